import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import TINY_PROXY

from nas.api import run_search
from nas.errors import BudgetError, RunLockedError, SearchError
from nas.report import load_run, regenerate, report_data
from nas.run import RunFolder, SearchConfig
from nas.search import DASHBOARD_NOTE, OVER_BUDGET_ATTR, trial_attrs, trial_row

optuna.logging.set_verbosity(optuna.logging.WARNING)


def config(tmp_path, **kw):
    base = dict(device="pixel7", space="mobilenetv3", trials=4, workers=2, data="builtin", out=str(tmp_path),
                name="run", references=1, proxy=dict(TINY_PROXY), seed=0, proxy_kind="train")
    base.update(kw)
    return SearchConfig(**base)


def test_search_writes_a_complete_run_folder(run5):
    tmp_path, res = run5
    run = tmp_path / "run"
    assert res.run_dir == run.resolve() and res.evaluated + res.failed >= 4
    for f in ("study.db", "config.yaml", "trials.csv", "pareto.json", "report.html", "pareto.png", "search.log"):
        assert (run / f).is_file() and (run / f).stat().st_size > 0, f
    study, meta, cfg = load_run(run)
    done = [t for t in study.trials if t.user_attrs.get("status") in ("evaluated", "failed", "duplicate")]
    assert len(done) == 5
    for t in study.trials:
        a = trial_attrs(t)
        assert a["key"].startswith("mobilenetv3") and a["latency_ms"] > 0 and a["macs"] > 0
        assert a["latency_provenance"] == "estimated" and "estimated" in a["device"]
        if a["status"] == "evaluated":
            assert 0 <= a["accuracy"] <= 1 and a["params"] > 0 and a["bytes"] > 0 and a["proxy_seconds"] > 0
            assert t.values[0] == a["accuracy"] and t.values[1] == a["latency_ms"]
    # the budget was derived from MobileNetV3-Small and is recorded with its source
    assert "mobilenet_v3_small_1.0_224" in meta.latency_budget_source and meta.latency_budget_ms > 0
    assert cfg.trials == 5 and {k: cfg.proxy[k] for k in TINY_PROXY} == TINY_PROXY
    front = json.loads((run / "pareto.json").read_text())
    assert front and all(p["latency_ms"] <= meta.latency_budget_ms for p in front)
    page = (run / "report.html").read_text()
    assert "Pareto front" in page and "estimated" in page and "<script src=\"http" not in page
    lines = (run / "trials.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + len(study.trials)
    refs = study.user_attrs["references"]
    assert len(refs) == 1 and refs[0]["accuracy"] is not None
    # `nas report` regenerates every derived file from the study alone
    for f in ("report.html", "pareto.png", "trials.csv", "pareto.json"):
        (run / f).unlink()
    regenerate(run)
    assert json.loads((run / "pareto.json").read_text()) == front
    # a second run into the same folder is refused, not mixed in
    with pytest.raises(SearchError, match="already exists"):
        run_search(config(tmp_path, trials=5))


def test_over_budget_candidates_are_recorded_but_cost_no_training(tmp_path, ray_session):
    res = run_search(config(tmp_path, trials=2, latency_ms=1.2, references=0))
    study, _, _ = load_run(tmp_path / "run")
    over = [t for t in study.trials if t.user_attrs["status"] == "over_budget"]
    assert over and res.over_budget == len(over)
    for t in over:
        assert t.user_attrs["latency_ms"] > 1.2 and "proxy_seconds" not in trial_attrs(t)
        assert trial_attrs(t)["params"] > 0 and trial_attrs(t)["bytes"] > 0
        assert t.constraints == {"0": t.user_attrs["latency_ms"] - 1.2}  # as Optuna (and its dashboard) read it
        # COMPLETE for the samplers, its 0.0 said to be a placeholder (issue 25: the dashboard showed it as measured)
        assert t.state.name == "COMPLETE" and t.values[0] == 0.0
        assert t.user_attrs[OVER_BUDGET_ATTR] == f"not trained (latency {t.user_attrs['latency_ms']:.2f} ms > " \
            "1.20 ms): its accuracy 0.0 is a placeholder, not a measurement"
    if importlib.util.find_spec("optuna_dashboard"):  # the study's note on its dashboard page
        from optuna_dashboard import get_note

        assert get_note(study) == DASHBOARD_NOTE
    trained = [t for t in study.trials if t.user_attrs["status"] == "evaluated"]
    assert len(trained) == 2 and all(t.user_attrs["latency_ms"] <= 1.2 for t in trained)


def test_one_worker_repeats_a_search_exactly(tmp_path, ray_session):
    """README: with --workers 1 the same seed gives the same trials (with more workers the order
    in which results reach the sampler depends on timing)."""
    runs = []
    for name in ("a", "b"):  # 2 trials each, one after the other: keys and trained accuracies repeat
        run_search(config(tmp_path, trials=2, workers=1, references=0, name=name))
        runs.append([(t.user_attrs["key"], t.user_attrs.get("accuracy")) for t in load_run(tmp_path / name)[0].trials])
    assert runs[0] == runs[1] and len(runs[0]) >= 2 and runs[0][0][0] != runs[0][1][0]


def test_a_budget_nothing_meets_names_the_fastest_latency(tmp_path):
    with pytest.raises(BudgetError, match=r"fastest .* takes \d+\.\d+ ms"):
        run_search(config(tmp_path, latency_ms=0.01))
    assert not (tmp_path / "run").exists()


def test_nan_trials_are_failed_with_a_reason_and_a_search_with_no_success_says_so(tmp_path, ray_session):
    """Every trial fails (NaN loss): each is recorded FAIL with its reason, the report is
    written, and the search raises instead of "finishing" with nothing evaluated."""
    with pytest.raises(SearchError, match=r"every trained trial failed \(2 of 2\).*non-finite"):
        run_search(config(tmp_path, trials=2, references=0, proxy={**TINY_PROXY, "lr": 1e12}))
    study, _, _ = load_run(tmp_path / "run")
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 2
    assert all("non-finite" in t.user_attrs["reason"] for t in failed)
    assert "Failed trials (2)" in (tmp_path / "run" / "report.html").read_text()


def _evaluating_worker_pids(raylet: int) -> list[int]:
    """Workers of *this* Ray (children of its raylet) running a trial; other Ray instances on
    the machine are left alone."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == raylet and b"ray::evaluate_candidate" in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return pids


@pytest.mark.slow
def test_a_worker_killed_mid_trial_fails_that_trial_only(tmp_path, ray_session):
    killed = []
    raylet = ray_session._private.worker._global_node.all_processes["raylet"][0].process.pid

    def killer():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            pids = _evaluating_worker_pids(raylet)
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    res = run_search(config(tmp_path, trials=4, references=0, proxy={**TINY_PROXY, "max_train_images": 640}))
    th.join(5)
    assert killed
    study, _, _ = load_run(tmp_path / "run")
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) >= 1 and any("died" in t.user_attrs["reason"] or "Worker" in t.user_attrs["reason"]
                                    for t in failed)
    assert res.evaluated + res.failed == 4


@pytest.mark.slow
def test_a_second_process_on_the_same_run_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    with RunFolder(run_dir):
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            RunFolder(run_dir).lock()
        # as a separate process through the CLI
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"config": {"trials": 1}, "storage": "x", "study_name": "x"}))
        p = subprocess.run([sys.executable, "-m", "nas", "search", "--resume", str(run_dir)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and "in use by another nas process" in p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    RunFolder(run_dir).lock()  # free again once released


@pytest.mark.slow
def test_kill_9_then_resume_keeps_every_finished_trial(tmp_path):
    # with successive halving: finished rungs are kept too, and the promotions still due run. Killed
    # once 2 of the 4 trials are done: the third (and the first promotion, or the fourth) in flight
    args = [sys.executable, "-m", "nas", "search", "--trials", "4", "--workers", "2", "--out", str(tmp_path),
            "--name", "run", "--references", "0", "--proxy-images", "640", "--no-distill",
            "--proxy", "train", "--fidelity", "halving", "--eta", "2", "--rungs", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    db = tmp_path / "run" / "study.db"
    deadline = time.time() + 240
    finished = []
    try:
        while time.time() < deadline:
            time.sleep(0.5)
            if db.exists():
                try:
                    con = sqlite3.connect(db, timeout=5)
                    finished = con.execute("select number from trials where state='COMPLETE'").fetchall()
                    con.close()
                except sqlite3.Error:
                    continue
                if len(finished) >= 2:
                    break
        assert len(finished) >= 2, "the search did not get going"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    con = sqlite3.connect(db)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    before = {r[0]: r[1] for r in con.execute(
        "select t.number, v.value from trials t join trial_values v on v.trial_id = t.trial_id "
        "where t.state='COMPLETE' and v.objective=0")}
    rungs_before = {k: json.loads(v) for k, v in con.execute(
        "select key, value_json from study_user_attributes where key like 'rungs:%'")}
    con.close()
    p = subprocess.run([sys.executable, "-m", "nas", "search", "--resume", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    study, _, _ = load_run(tmp_path / "run")
    after = {t.number: t for t in study.trials}
    for n, v in before.items():  # nothing finished was lost or changed
        assert after[n].state.name == "COMPLETE" and after[n].values[0] == v
    rows = {t.number: trial_row(t) for t in study.trials}
    counted = [t for t in study.trials if rows[t.number].status in ("evaluated", "failed", "duplicate")]
    assert len(counted) == 4
    reruns = [t for t in study.trials if "rerun_of" in t.user_attrs]
    # cut off by kill -9: failed on resume without a status of their own, so they read as interrupted
    interrupted = [t for t in study.trials if rows[t.number].status == "interrupted" and "key" in t.user_attrs]
    assert len(interrupted) >= 1 and sorted(t.user_attrs["rerun_of"] for t in reruns) == [t.number for t in interrupted]
    for t in reruns:
        assert t.params == after[t.user_attrs["rerun_of"]].params
    for k, recs in rungs_before.items():  # every rung finished before the kill is kept as it was
        assert study.user_attrs[k][:len(recs)] == recs
    promoted = [k for k, v in study.user_attrs.items() if k.startswith("rungs:") and v[0]["status"] == "evaluated"]
    evaluated = sum(1 for r in rows.values() if r.status == "evaluated")  # a duplicate is not trained again
    assert len(promoted) == evaluated // 2 and study.user_attrs["promoting"] == []  # none left in flight


def _chromium():
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (.ci/run installs it)")
@pytest.mark.slow
def test_report_renders_offline_in_headless_chromium(run5, tmp_path):
    import re

    from PIL import Image

    run = run5[0] / "run"
    study, _, _ = load_run(run)
    page = run / "report.html"
    common = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--proxy-server=127.0.0.1:9", "--virtual-time-budget=8000",
              f"--user-data-dir={tmp_path / 'profile'}"]
    for width, height in ((1400, 1100), (400, 1600)):  # a desktop and a phone-width window
        shot = tmp_path / f"shot-{width}.png"
        subprocess.run(common + [f"--screenshot={shot}", f"--window-size={width},{height}", page.as_uri()],
                       capture_output=True, timeout=120)
        img = Image.open(shot).convert("RGB")
        assert img.size == (width, height) and len(img.getcolors(maxcolors=1 << 20)) > 50  # drawn, not blank
    dom = subprocess.run(common + ["--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert "Take this model: trial" in dom and 'id="front-table"' in dom
    front_div = dom[dom.index('id="front"'):dom.index('id="hypervolume"')]
    points = len(re.findall(r'class="point"', front_div))
    rows = [t for t in study.trials if t.user_attrs.get("status") in ("evaluated", "duplicate", "over_budget")]
    _, meta, cfg = load_run(run)
    data = report_data(study, meta, cfg, run)  # front points are drawn twice: among all trials and on the front
    refs = sum(1 for r in data.references if r.get("accuracy") is not None)
    marked = 1 if data.recommended is not None else 0  # the star on the recommended model
    assert points == len(rows) + len(data.front) + refs + marked


def test_the_searchs_best_is_the_trial_distill_picks(run5):
    from nas.report import load_run
    from nas.search import trial_row
    from nas.winner import pick_winner

    tmp_path, res = run5
    study, meta, _ = load_run(tmp_path / "run")
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)]
    win = pick_winner(rows, meta.latency_budget_ms, "best")
    assert (res.best_accuracy, res.best_key) == (win.accuracy, win.key)


