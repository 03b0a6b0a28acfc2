"""Peak memory and size as budgets: the computed figure, and a search that enforces them."""

import dataclasses
import re

import pytest
from conftest import TINY_PROXY

import nas
from nas.space import OpSpec, activation_bytes, memory_bytes, peak_activation_bytes


def test_an_inverted_residual_holds_its_input_and_expanded_map_at_once():
    # 8x8, 16 -> 16 channels, expanded to 64, stride 1: residual, so the input lives to the add
    op = OpSpec("mbconv", 8, 8, 16, 16, hidden=64, kernel=3, stride=1, expand=True, bits=32)
    x, e, d, y = 64 * 16, 64 * 64, 64 * 64, 64 * 16
    assert activation_bytes(op) == 4 * max(x + e, e + d + x, d + y + x, x + y)
    assert activation_bytes(dataclasses.replace(op, bits=8)) == activation_bytes(op) // 4
    conv = OpSpec("conv", 224, 224, 3, 16, kernel=3, stride=2, bits=32)
    assert activation_bytes(conv) == 4 * (224 * 224 * 3 + 112 * 112 * 16)


def test_memory_is_activations_plus_weights_and_grows_with_the_input_side():
    space = nas.load_space("mobilenetv3")
    small = space.reference("mobilenet_v3_small_1.0_224")
    ops = small.ops(num_classes=10)
    assert memory_bytes(small, 1000, num_classes=10) == peak_activation_bytes(ops) + 1000
    lower = small.replace(resolution=128)
    assert memory_bytes(lower, 0, num_classes=10) < memory_bytes(small, 0, num_classes=10)
    assert memory_bytes(small, 0, 10, float_model=True) > memory_bytes(small.replace_bits(8), 0, 10)


def test_memory_and_size_budgets_keep_over_budget_candidates_untrained(tmp_path, ray_session):
    from nas.api import run_search
    from nas.run import SearchConfig
    from nas.search import CONSTRAINT_NAMES_ATTR, constraints_of, open_study, read_trials

    cfg = SearchConfig(trials=3, workers=2, data="builtin", out=str(tmp_path), name="m", references=0,
                       distill=False, proxy=dict(TINY_PROXY), memory_kb=900.0, size_kb=800.0,
                       objectives=("acc", "latency", "memory", "size"), proxy_kind="train")
    res = run_search(cfg)
    study = open_study(res.study_name, res.storage)
    assert study.metric_names == ["accuracy", "latency_ms", "memory_mb", "size_mb"]
    rows = read_trials(study)
    trained = [r for r in rows if r.status == "evaluated"]
    over = [r for r in rows if r.status == "over_budget"]
    assert len(trained) == 3 and over
    for r in trained:
        assert r.memory <= 900 * 1024 and r.bytes <= 800 * 1024
    for r in over:
        assert ("memory" in r.reason and r.memory > 900 * 1024) or ("size" in r.reason and r.bytes > 800 * 1024) \
            or "latency" in r.reason
        cons = constraints_of(study.trials[r.number], study.user_attrs[CONSTRAINT_NAMES_ATTR])
        assert list(cons) == ["latency_over_budget_ms", "size_over_budget_kb", "memory_over_budget_kb"]
        assert any(v > 0 for v in cons.values())
        assert cons["memory_over_budget_kb"] == pytest.approx(r.memory / 1024 - 900)
    html = (tmp_path / "m" / "report.html").read_text()
    assert "Peak memory at batch 1" in html and "<th>memory KB</th>" in html


@pytest.mark.parametrize("flag", ["--memory-kb", "--size-kb"])
def test_a_bad_memory_or_size_budget_is_one_line(flag):
    from nas.errors import SearchError
    from nas.run import SearchConfig

    with pytest.raises(SearchError, match=flag):
        SearchConfig(**{flag[2:].replace("-", "_"): -1.0}).validate()


# ----------------------------------------------------------------------------- budgets checked up front

def test_footprint_from_the_operator_list_is_what_the_driver_measures(space):
    """The feasibility check prices size and memory without building modules: it must give the
    trial's ``bytes`` (model_bytes of the built module) and ``memory`` exactly, in every space,
    at its bit widths, for grayscale and colour data."""
    from nas.search._worker import candidate_size
    from nas.space import footprint

    cands = [space.reference(n) for n in space.references()] + space.sample_many(12, 3)
    for num_classes, in_channels in ((10, 1), (1000, 3)):
        for cand in cands:
            _, nbytes = candidate_size(cand, num_classes, in_channels)
            assert footprint(cand, num_classes, in_channels) == (
                nbytes, memory_bytes(cand, nbytes, num_classes, in_channels)), cand.key


def _resolve(tmp_path, **budgets):
    from nas.run import SearchConfig, resolve_run

    return resolve_run(SearchConfig(out=str(tmp_path), name="r", proxy_kind="train", **budgets))


@pytest.mark.parametrize("flag, kb, what", [("memory_kb", 400.0, "smallest peak memory"),
                                            ("size_kb", 300.0, "smallest model")])
def test_a_memory_or_size_budget_nothing_meets_is_refused_before_the_search(tmp_path, flag, kb, what):
    """Issue 24: --memory-kb 400 on the built-in data was found only after 240 rejected samples."""
    from nas.errors import BudgetError
    from nas.run import FEASIBILITY_SAMPLES
    from nas.space import footprint

    with pytest.raises(BudgetError) as info:
        _resolve(tmp_path, **{flag: kb})
    msg = str(info.value)
    m = re.search(rf"--{flag[:-3]}-kb {kb:g}: the {what} .* of {FEASIBILITY_SAMPLES} sampled "
                                r"candidates and the references is (\d+) KB \((\S+)\)$", msg)
    assert m, msg
    space = nas.load_space("mobilenetv3")
    named = footprint(space.parse(m.group(2)), 10, 1)[flag == "memory_kb"]
    assert round(named / 1024) == int(m.group(1)) > kb  # the candidate named, at the size said
    assert not (tmp_path / "r").exists()


def test_a_rare_budget_says_what_share_of_the_samples_fits(tmp_path):
    from nas.run import FEASIBILITY_SAMPLES
    from nas.space import footprint

    space = nas.load_space("mobilenetv3")
    mems = [footprint(c, 10, 1)[1] for c in space.sample_many(FEASIBILITY_SAMPLES, 0)]
    k = sum(m <= 600 * 1024 for m in mems)
    assert 0 < k < 0.1 * len(mems)  # rare on the built-in data (grayscale, 10 classes)
    ctx = _resolve(tmp_path, memory_kb=600.0)
    assert ctx.budget_notes[0].startswith(f"--memory-kb 600: {k} ({100 * k / len(mems):.2g}%) of "
                                          f"{FEASIBILITY_SAMPLES} sampled candidates fit; a rare budget")
    ctx = _resolve(tmp_path, memory_kb=1e6)  # a budget everything meets is not called rare
    assert ctx.budget_notes[0] == f"--memory-kb 1e+06: {FEASIBILITY_SAMPLES} (100%) of {FEASIBILITY_SAMPLES} " \
                                  f"sampled candidates fit"
    assert _resolve(tmp_path).budget_notes == ()  # no memory or size budget: nothing to say


def test_budgets_each_met_but_never_together_are_refused(tmp_path):
    """The smallest model and the smallest peak memory are different candidates: budgets at
    exactly those two figures are each met, but by no one candidate."""
    from nas.errors import BudgetError
    from nas.run import FEASIBILITY_SAMPLES
    from nas.space import footprint

    space = nas.load_space("mobilenetv3")
    cands = space.sample_many(FEASIBILITY_SAMPLES, 0) + [space.reference(n) for n in space.references()]
    prints = [footprint(c, 10, 1) for c in cands]
    size = min(p[0] for p in prints)
    mem = min(p[1] for p in prints)
    assert not any(s <= size and m <= mem for s, m in prints)
    with pytest.raises(BudgetError, match=r"meets .*--size-kb .* and --memory-kb .* together"):
        _resolve(tmp_path, size_kb=size / 1024, memory_kb=mem / 1024)
