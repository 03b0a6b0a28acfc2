"""One search, a model per phone: --device a,b,c prices every candidate on each device, with a
budget, a front, a winner and a report section per device."""

import csv
import json

import optuna
import pytest
from conftest import TINY_PROXY, small_builtin
from typer.testing import CliRunner

from nas.api import distill_run, resume_search, run_search
from nas.cli import app
from nas.errors import DistillError, SearchError
from nas.report import load_run, overlay_runs
from nas.run import SearchConfig, read_run_config, resolve_run
from nas.search import best_trial, constraints_of, read_trials, rows_for_device, trial_attrs
from nas.search._driver import latency_steer
from nas.winner import DistillConfig, WinnerCard, device_of_folder, rule_of_folder, winner_folder

optuna.logging.set_verbosity(optuna.logging.WARNING)
DEVICES = ("pixel7", "pixel1", "note10")
FAST = dict(epochs=0.2, own_side_epochs=0.1, tflite=False, measure_host=False)


def config(tmp_path, **kw):
    base = dict(device=",".join(DEVICES), space="mobilenetv3", trials=4, workers=2, data="builtin",
                out=str(tmp_path), name="multi", references=1, proxy=dict(TINY_PROXY), seed=0, proxy_kind="train")
    base.update(kw)
    return SearchConfig(**base)


# ----------------------------------------------------------------------------- configuration

def test_the_config_holds_a_device_list_and_a_budget_per_device():
    cfg = SearchConfig(device="pixel7,pixel1", latency_ms=(3.0, 12.0))
    cfg.validate()
    assert cfg.devices() == ("pixel7", "pixel1") and cfg.budgets_given() == (3.0, 12.0)
    assert SearchConfig().devices() == ("pixel7",) and SearchConfig().budgets_given() == (None,)
    names = ("pixel7", "pixel1")
    # one device: the names of today; several: latency relative to each budget
    assert SearchConfig().metric_names() == ["accuracy", "latency_ms"]
    assert SearchConfig().constraint_names() == ["latency_over_budget_ms"]
    assert cfg.metric_names(names) == ["accuracy", "latency_per_budget_max"]
    assert cfg.constraint_names(names) == ["latency_over_budget_pixel7", "latency_over_budget_pixel1"]
    obj = SearchConfig(device="pixel7,pixel1", steer="objectives", objectives=("acc", "latency", "size"),
                       size_kb=900.0)
    assert obj.metric_names(names) == ["accuracy", "latency_per_budget_pixel7", "latency_per_budget_pixel1",
                                       "size_mb"]
    assert obj.constraint_names(names) == ["latency_over_every_budget", "size_over_budget_kb"]


@pytest.mark.parametrize("kw, msg", [
    (dict(device="pixel7,pixel1,note10", latency_ms=(3.0, 12.0)), "gives 2 budget(s) for 3 device(s)"),
    (dict(device="pixel7,pixel1", latency_ms=3.0), "gives 1 budget for 2 devices"),
    (dict(device="pixel7,pixel7"), "each device once"),
    (dict(device="pixel7,"), "each device once"),
    (dict(device="pixel7,pixel1", steer="vote"), "--steer must be one of constraints, objectives"),
    (dict(device="pixel7,pixel1", latency_ms=(3.0, -1.0)), "--latency-ms must be a positive number"),
])
def test_bad_device_lists_are_refused(kw, msg):
    with pytest.raises(SearchError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        SearchConfig(**kw).validate()


def test_the_config_round_trips_through_config_yaml(tmp_path):
    from nas.run import write_run_config

    ctx = resolve_run(config(tmp_path, latency_ms=(3.0, 12.0, 8.0)))
    write_run_config(tmp_path, ctx.config, ctx.meta)
    cfg, meta = read_run_config(tmp_path)
    assert cfg.devices() == DEVICES and cfg.latency_ms == (3.0, 12.0, 8.0)
    assert [m.name for m in meta.devices] == list(DEVICES) and [m.budget_ms for m in meta.devices] == [3.0, 12.0, 8.0]
    assert meta.latency_budget_ms == 3.0 and meta.devices[1].provenance == "imported"
    # a run on one device writes no device list: its config.yaml is as it was
    one = resolve_run(config(tmp_path / "one", device="pixel7"))
    assert "devices" not in one.meta.to_dict() and not one.multi and one.device_names() == ()


def test_what_the_sampler_is_told_of_a_candidate_on_several_devices(tmp_path):
    ctx = resolve_run(config(tmp_path, latency_ms=(2.0, 10.0, 5.0)))
    lats = {"pixel7": 1.0, "pixel1": 15.0, "note10": 5.0}  # within two budgets, over one
    cons, obj, over = latency_steer(ctx, lats)
    assert cons == pytest.approx([-0.5, 0.5, 0.0]) and obj == pytest.approx(1.5) and over == []
    from dataclasses import replace
    octx = replace(ctx, config=replace(ctx.config, steer="objectives"))
    cons, obj, over = latency_steer(octx, lats)
    assert cons == pytest.approx([-0.5]) and obj == pytest.approx([0.5, 1.5, 1.0]) and over == []
    # over every budget: not trained, and the reason names each device
    cons, obj, over = latency_steer(ctx, {"pixel7": 3.0, "pixel1": 11.0, "note10": 6.0})
    assert min(cons) > 0 and len(over) == 1 and "pixel1 11.00 ms > 10.00 ms" in over[0]
    # one device: today's constraint and objective, in ms
    one = resolve_run(config(tmp_path / "one", device="pixel7", latency_ms=2.0))
    assert latency_steer(one, 2.5) == ([0.5], 2.5, ["latency 2.50 ms > 2.00 ms"])


def test_winner_folders_per_device():
    assert winner_folder("best") == "winner" and winner_folder("best", "pixel1") == "winner/pixel1"
    assert winner_folder("knee", "note10") == "winners/note10/knee"
    assert winner_folder("latency<=2.5", "pixel7") == "winners/pixel7/latency-le-2.5"
    for pick in ("best", "knee", "latency<=2.5", "trial=3"):
        for device in (None, "pixel1"):
            folder = winner_folder(pick, device)
            assert rule_of_folder(folder) == pick and device_of_folder(folder) == device


# ----------------------------------------------------------------------------- the CLI refuses in one line

runner = CliRunner()


@pytest.mark.parametrize("args, msg", [
    (["--device", "pixel7,nokia3310,note10"], "nokia3310"),
    (["--device", "pixel7,pixel1,note10", "--latency-ms", "3,12"], "gives 2 budget(s) for 3 device(s)"),
    (["--device", "pixel7,pixel1", "--latency-ms", "3,0.01"],
     "no candidate of mobilenetv3 meets 0.01 ms on pixel1 (one of the run's devices, with pixel7: the run is "
     "refused): the fastest of 2000 sampled candidates and the references takes"),
    (["--device", "pixel7,pixel1", "--latency-ms", "3,x"], "--latency-ms must be a number of ms"),
    (["--device", "pixel7,pixel1", "--steer", "vote"], "--steer must be one of"),
])
def test_search_refuses_bad_device_lists_in_one_line(args, msg, tmp_path):
    r = runner.invoke(app, ["search", *args, "--out", str(tmp_path)])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if not ln.startswith("latency budget")]
    assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], r.output
    assert "Traceback" not in r.output and list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- a real run on three devices

@pytest.fixture(scope="module")
def multi(tmp_path_factory, ray_session):
    out = tmp_path_factory.mktemp("multi")
    data = small_builtin(out / "small.npz")
    return run_search(config(out, data=str(data))), data


def test_one_search_prices_every_candidate_on_every_device(multi):
    res, _ = multi
    run = res.run_dir
    study, meta, cfg = load_run(run)
    assert cfg.devices() == DEVICES and [m.name for m in meta.devices] == list(DEVICES)
    for m in meta.devices:  # each device's copy of its profile prices the run from now on
        assert (run / m.profile_copy).is_file() and m.profile_digest.startswith("sha256:")
        assert m.budget_source.startswith("the predicted latency of mobilenet_v3_small_1.0_224 on " + m.name)
    assert study.user_attrs["constraint_names"] == [f"latency_over_budget_{d}" for d in DEVICES]
    budgets = {m.name: m.budget_ms for m in meta.devices}
    priced = [t for t in study.trials if "key" in t.user_attrs]
    assert priced
    for t in priced:
        a = trial_attrs(t)
        assert set(a["latencies_ms"]) == set(DEVICES) and a["latency_ms"] == a["latencies_ms"]["pixel7"]
        assert a["latency_provenances"] == {"pixel7": "estimated", "pixel1": "imported", "note10": "imported"}
        ratios = [a["latencies_ms"][d] / budgets[d] for d in DEVICES]
        cons = constraints_of(t, study.user_attrs["constraint_names"])
        assert list(cons) == [f"latency_over_budget_{d}" for d in DEVICES] and len(t.constraints) == len(DEVICES)
        assert cons["latency_over_budget_pixel1"] == pytest.approx(ratios[1] - 1)
        assert t.values[1] == pytest.approx(max(ratios))
        # over budget (not trained) only when over every device's budget
        assert (a["status"] == "over_budget") == (min(ratios) > 1)
    # trials.csv: a latency column per device
    rows = list(csv.DictReader((run / "trials.csv").open()))
    assert len(rows) == len(study.trials)
    for row in rows:
        if row["key"]:
            assert float(row["latency_ms_pixel1"]) > 0 and row["latency_ms"] == row["latency_ms_pixel7"]
    # a front per device, each within its device's budget
    fronts = json.loads((run / "pareto.json").read_text())
    assert set(fronts) == set(DEVICES)
    for d, f in fronts.items():
        assert f["budget_ms"] == budgets[d] and all(p["latency_ms"] <= budgets[d] for p in f["front"])
    page = (run / "report.html").read_text()
    for d in DEVICES:
        assert f"<section id='device-{d}'>" in page and f"--device {d}" in page
    assert "div id=\"overlay\"" in page or "id='overlay'" in page or 'id="overlay"' in page
    # the search's summary: the best on each device at its budget
    trials = read_trials(study)
    for d in DEVICES:
        b = best_trial(rows_for_device(trials, d), budgets[d])
        assert res.best_by_device[d] == ((b.accuracy, b.key) if b else (None, None))


def test_nas_report_overlays_the_fronts_of_several_runs_on_one_device(multi, run5, tmp_path):
    res, _ = multi
    fronts, files = overlay_runs([res.run_dir, run5[0] / "run"], "pixel7", tmp_path / "fronts.html")
    assert [f.run for f in fronts] == [res.run_dir.name, "run"] and all(f.device == "pixel7" for f in fronts)
    assert files["html"].is_file() and files["png"].stat().st_size > 0
    assert all(0 <= f.hypervolume <= 1 for f in fronts)
    r = runner.invoke(app, ["report", str(res.run_dir), str(run5[0] / "run"), "--device", "pixel1",
                            "--out", str(tmp_path / "x.html")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "has no device 'pixel1'; its device(s): pixel7" in r.output


def test_distill_needs_a_device_on_a_run_on_several(multi):
    res, _ = multi
    with pytest.raises(DistillError, match="searched for 3 devices .pixel7, pixel1, note10.: choose one with --device"):
        distill_run(res.run_dir, DistillConfig(**FAST))
    with pytest.raises(DistillError, match="no device 'nokia'"):
        distill_run(res.run_dir, DistillConfig(**FAST, device="nokia"))
    for args, msg in ((["--out", "mine"], "--out names one folder: with a run on several devices give --device"),
                      (["--device", "nokia"], "this run has no device 'nokia'; its device(s): pixel7, pixel1, note10")):
        r = runner.invoke(app, ["distill", str(res.run_dir), *args])
        assert r.exit_code == 2 and r.output.strip().count("\n") == 0 and msg in r.output, r.output


@pytest.mark.slow
def test_a_winner_per_device_and_one_network_winning_twice_is_trained_once(multi):
    res, _ = multi
    run = res.run_dir
    card = distill_run(run, DistillConfig(**FAST, device="pixel1"))
    assert card.folder == "winner/pixel1" and (run / "winner" / "pixel1" / "model.onnx").is_file()
    assert card.device == "pixel1" and card.serves == ("pixel1",) and card.copied_from is None
    budgets = {m.name: m.budget_ms for m in read_run_config(run)[1].devices}
    assert card.latency_budget_ms == budgets["pixel1"] and card.predicted_latency_ms <= budgets["pixel1"]
    assert card.provenance.startswith("imported")  # with how many of its ops the table held
    # the same network picked for note10: copied, not retrained, with note10's latency on its card
    twin = distill_run(run, DistillConfig(**FAST, device="note10", pick=f"trial={card.trial}"))
    assert twin.folder == f"winners/note10/trial-{card.trial}" and twin.copied_from == "winner/pixel1"
    assert twin.device == "note10" and twin.latency_budget_ms == budgets["note10"]
    assert twin.predicted_latency_ms != card.predicted_latency_ms and twin.serves == ("pixel1", "note10")
    again = WinnerCard.load(run / "winner" / "pixel1" / "card.json")
    assert again.serves == ("pixel1", "note10") and "One network for 2 devices" in again.markdown()
    page = (run / "report.html").read_text()
    assert "winner/pixel1/" in page and f"winners/note10/trial-{card.trial}/" in page


def test_resume_keeps_the_device_list_and_the_objectives_steer(tmp_path, ray_session):
    cfg = config(tmp_path, trials=2, references=0, steer="objectives", latency_ms=(4.0, 16.0, 7.0),
                 name="resumed")
    first = run_search(cfg)
    res = resume_search(first.run_dir, trials=3)
    study, meta, cfg2 = load_run(res.run_dir)
    assert cfg2.devices() == DEVICES and cfg2.latency_ms == (4.0, 16.0, 7.0) and cfg2.steer == "objectives"
    assert study.metric_names == ["accuracy"] + [f"latency_per_budget_{d}" for d in DEVICES]
    done = [t for t in study.trials if t.user_attrs.get("status") in ("evaluated", "duplicate", "failed")]
    assert len(done) == 3
    for t in study.trials:
        a = trial_attrs(t)
        assert set(a["latencies_ms"]) == set(DEVICES)
        assert t.values[1:] == pytest.approx([a["latencies_ms"][d] / b for d, b in zip(DEVICES, (4.0, 16.0, 7.0))])
        assert list(constraints_of(t, study.user_attrs["constraint_names"])) == ["latency_over_every_budget"]
        assert len(t.constraints) == 1


def test_the_cli_searches_several_devices_and_names_each_ones_best(tmp_path, ray_session):
    r = runner.invoke(app, ["search", "--device", "pixel7,note10", "--latency-ms", "3,6", "--trials", "2",
                            "--proxy-images", "128", "--references", "0", "--no-distill", "--out", str(tmp_path),
                            "--name", "s"])
    assert r.exit_code == 0, r.output
    for name, budget in (("pixel7", "3.00"), ("note10", "6.00")):
        assert f"best within {budget} ms on {name}" in r.output or \
            f"{name}: no candidate within {budget} ms" in r.output, r.output
    cfg, meta = read_run_config(tmp_path / "s")
    assert cfg.latency_ms == (3.0, 6.0) and [m.name for m in meta.devices] == ["pixel7", "note10"]
    assert r.output.strip().splitlines()[-1].startswith(f"next: nas distill {tmp_path / 's'}")
