"""Bad input, fuzzed: mutated space and profile YAML, latency tables, raw text and CLI flags.
Each must load or fail with the project's typed error (a NasError), never anything else."""

import copy
import math
import random

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nas._paths import data_dir
from nas.cli import app
from nas.errors import NasError, SearchError
from nas.latency import load_device, read_table
from nas.run import SearchConfig
from nas.space import load_space

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=12), st.lists(st.integers(-3, 300), max_size=4),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _paths(node, prefix=()):
    """Every path (tuple of keys / indexes) into a YAML document."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _mutate(doc, path, action, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _mutation(doc):
    paths = list(_paths(doc))
    return st.tuples(st.sampled_from(paths), st.sampled_from(["delete", "replace"]), JUNK)


SPACE_DOC = yaml.safe_load((data_dir("search_spaces") / "mobilenetv3.yaml").read_text())
PROFILE_DOC = yaml.safe_load((data_dir("device_profiles") / "pixel7.yaml").read_text())


def _load_mutated(factory, doc, mutation, loader):
    """Write the mutated document and load it: the loaded object, or None after a NasError."""
    path = factory.mktemp("y") / "doc.yaml"
    path.write_text(yaml.safe_dump(_mutate(doc, *mutation)))
    try:
        return loader(path)
    except NasError:
        return None


@SETTINGS
@given(_mutation(SPACE_DOC))
def test_mutated_space_yaml_loads_or_raises_a_typed_error(tmp_path_factory, m):
    space = _load_mutated(tmp_path_factory, SPACE_DOC, m, load_space)
    if space is not None:
        space.sample(random.Random(0))  # what loads, works


@SETTINGS
@given(_mutation(PROFILE_DOC))
def test_mutated_profile_yaml_loads_or_raises_a_typed_error(tmp_path_factory, m):
    prof = _load_mutated(tmp_path_factory, PROFILE_DOC, m, load_device)
    if prof is None:
        return
    cand = load_space("mobilenetv3").reference("mobilenet_v3_small_1.0_224")
    try:
        ms = prof.latency_ms(cand)
    except NasError:
        return
    assert math.isfinite(ms)


@SETTINGS
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))),
       st.sampled_from([".yaml", ".json"]))
def test_raw_text_as_table_space_or_profile_is_a_typed_error(tmp_path_factory, text, suffix):
    d = tmp_path_factory.mktemp("t")
    path = d / f"x{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for load in (read_table, load_space, load_device):
        try:
            load(path)
        except NasError:
            pass


@SETTINGS
@given(st.dictionaries(st.text(max_size=20), JUNK, max_size=5))
def test_table_entries_are_checked(tmp_path_factory, table):
    path = tmp_path_factory.mktemp("t") / "table.yaml"
    path.write_text(yaml.safe_dump(table))
    try:
        out = read_table(path)
    except NasError:
        return
    assert all(v > 0 and math.isfinite(v) for v in out.values())


@SETTINGS
@given(trials=st.integers(-5, 3), workers=st.integers(-5, 3),
       latency=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
       sampler=st.sampled_from(["tpe", "nsga2", "random", "", "TPE", "grid"]),
       objectives=st.lists(st.sampled_from(["acc", "latency", "size", "flops", ""]), max_size=4))
def test_search_flags_validate_or_raise_a_search_error(trials, workers, latency, sampler, objectives):
    cfg = SearchConfig(trials=trials, workers=workers, latency_ms=latency, sampler=sampler,
                       objectives=tuple(objectives))
    ok = (trials >= 1 and workers >= 1 and sampler in ("tpe", "nsga2", "random")
          and objectives in (["acc", "latency"], ["acc", "latency", "size"])
          and (latency is None or (latency > 0 and math.isfinite(latency))))
    if ok:
        cfg.validate()
    else:
        with pytest.raises(SearchError):
            cfg.validate()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["--trials", "--workers", "--latency-ms", "--sampler", "--objectives", "--seed",
                                 "--data", "--device", "--space", "-5", "0", "nan", "x", "acc", "", "--bogus"]),
                min_size=1, max_size=4))
def test_cli_search_flags_never_traceback(argv):
    r = CliRunner().invoke(app, ["search", *argv, "--trials", "0"])  # never starts a real search
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "Traceback" not in r.output
