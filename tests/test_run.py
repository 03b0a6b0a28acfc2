"""The run context (nas.run._context) and a search over a space given as a YAML path: the file's content
is what runs, in every Ray worker, whatever its name."""

import random
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import TINY_PROXY, png_folder

from nas.api import resume_search, run_search
from nas.errors import SearchError
from nas.report import load_run
from nas.run import SearchConfig, open_run, read_run_config, resolve_run
from nas.search import read_trials
from nas.space import load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
BUILTIN = load_space("mobilenetv3").source


def _space_copy(tmp_path, name: str, resolutions: list[int]) -> Path:
    raw = yaml.safe_load(BUILTIN.read_text())
    raw["name"], raw["resolutions"] = name, resolutions
    path = tmp_path / f"{name}-copy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _config(tmp_path, space: Path, **kw) -> SearchConfig:
    base = dict(device="pixel7", space=str(space), trials=4, workers=2, out=str(tmp_path / "out"), name="r",
                references=0, proxy=dict(TINY_PROXY), distill=False, proxy_kind="train")
    return SearchConfig(**{**base, **kw})


def test_a_search_over_an_edited_copy_under_another_name_runs_in_the_workers(tmp_path, ray_session):
    path = _space_copy(tmp_path, "myspace", [128, 160])
    res = run_search(_config(tmp_path, path))
    assert res.evaluated + res.failed == 4 and res.failed == 0, res
    study, meta, _ = load_run(res.run_dir)
    trained = [r for r in read_trials(study) if r.status in ("evaluated", "failed", "duplicate")]
    assert len(trained) == 4 and all(r.status in ("evaluated", "duplicate") for r in trained)
    assert all(r.key.startswith("myspace") and (":r128:" in r.key or ":r160:" in r.key) for r in read_trials(study))
    assert meta.space_source == str(path.resolve())
    # resumable from the run folder alone: the space comes back from the file it was read from
    ctx = open_run(res.run_dir)
    assert ctx.space.name == "myspace" and ctx.space.source.resolve() == path.resolve()


def test_a_copy_that_keeps_a_builtin_name_runs_its_own_content(tmp_path, ray_session):
    path = _space_copy(tmp_path, "mobilenetv3", [96])  # the built-in has no 96 px candidates
    res = run_search(_config(tmp_path, path, trials=2))
    study, _, _ = load_run(res.run_dir)
    keys = [r.key for r in read_trials(study)]
    assert keys and all(":r96:" in k for k in keys)
    assert res.evaluated >= 1


def test_the_context_is_resolved_once_and_written_in_one_place(tmp_path):
    ctx = resolve_run(SearchConfig(trials=1, out=str(tmp_path), name="c", proxy=dict(TINY_PROXY), proxy_kind="train"))
    assert ctx.space is load_space("mobilenetv3") and ctx.dataset.num_classes == ctx.meta.num_classes == 10
    assert "mobilenet_v3_small_1.0_224" in ctx.budget_source and ctx.budget_ms == ctx.meta.latency_budget_ms
    assert not ctx.run_dir.exists()  # nothing is written before the search starts
    # the built-in data is grayscale: candidates are priced with the 1-channel stem they are built with
    assert ctx.dataset.in_channels == 1
    ref = ctx.space.reference("mobilenet_v3_small_1.0_224")
    assert ctx.latency_ms(ref) == ctx.profile.latency_ms(ref, 10, in_channels=1) < ctx.profile.latency_ms(ref, 10)
    assert ref.ops(num_classes=10, in_channels=1)[0].cin == 1
    with pytest.raises(SearchError, match="not a run folder"):
        read_run_config(tmp_path / "nowhere")
    with pytest.raises(SearchError, match="cannot change space"):
        open_run(tmp_path, space="fbnet")


def test_an_image_folder_is_resized_to_every_proxy_side_before_any_trial(tmp_path):
    from nas.train import evaluate_proxy, proxy_resolution, proxy_sides

    root = png_folder(tmp_path / "imgs", n=12, size=24)
    seen = []
    space = _space_copy(tmp_path, "sides", [128, 160, 224])
    ctx = resolve_run(_config(tmp_path, space, data=str(root)), progress=lambda *a: seen.append(a))
    sides = proxy_sides(ctx.space, 24)
    assert sides == [14, 17, 24]  # 24 x 128/224 and 24 x 160/224, rounded; the top side is the data's
    made = sorted(p.name.split(".")[0] + "." + p.name.split(".")[1]
                  for p in ctx.dataset.x_train.path.parent.glob("*.r*.npy"))
    assert made == ["test.r14", "test.r17", "train.r14", "train.r17"]
    assert {w for w, *_ in seen} >= {"resizing imgs/train images to 14 px", "resizing imgs/test images to 17 px"}
    stamp = {p: p.stat().st_mtime_ns for p in ctx.dataset.x_train.path.parent.iterdir()}
    cand = ctx.space.sample(random.Random(0)).replace(resolution=128)
    r = evaluate_proxy(cand, ctx.dataset, epochs=1, max_train_images=8)
    assert not r.failed and r.resolution == proxy_resolution(cand, 24) in sides
    assert {p: p.stat().st_mtime_ns for p in ctx.dataset.x_train.path.parent.iterdir()} == stamp  # nothing new


def test_a_resume_after_the_image_cache_was_cleared_rebuilds_it_with_progress(tmp_path, ray_session, monkeypatch):
    import shutil

    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    root = png_folder(tmp_path / "imgs", n=12, size=24)
    space = _space_copy(tmp_path, "sides", [128, 224])
    res = run_search(_config(tmp_path, space, data=str(root), trials=1, workers=1))
    shutil.rmtree(tmp_path / "cache")  # cleared, or the run moved to another machine
    seen = set()
    again = resume_search(res.run_dir, data_progress=lambda what, done, total: seen.add(what))
    assert {"decoding imgs/train images", "counting imgs pixel statistics",
            "resizing imgs/train images to 14 px"} <= seen
    assert again.evaluated + again.failed >= 1


def test_resume_of_a_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(SearchError, match="not a run folder"):
        resume_search(tmp_path / "missing")
