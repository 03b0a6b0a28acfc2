"""Successive halving: rung arithmetic, promotion order, a real halving search on Ray, rung
records, checkpoints, resume of an interrupted promotion, and the winner continuing from its
top-rung weights."""

import math

import pytest
from conftest import TINY_PROXY, copy_run, small_builtin

from nas.api import resume_search, run_search
from nas.run import Rungs, SearchConfig, read_run_config
from nas.search import (
    PROMOTING_ATTR,
    RUNGS_ATTR,
    Ladder,
    band_order,
    checkpoint_path,
    open_study,
    pareto_order,
    read_trials,
)


def test_rungs_multiply_the_budget_and_a_promotion_trains_only_the_difference():
    r = Rungs(eta=3, count=3)
    assert [r.epochs(k, 1.0) for k in range(3)] == [1, 3, 9]
    assert [r.segment(k, 0.5) for k in (1, 2)] == [1.0, 3.0]
    assert r.cost_per_candidate() == pytest.approx(1 + 2 / 3 + 6 / 9)
    assert Rungs(eta=2, count=1).cost_per_candidate() == 1


def test_promotion_order_keeps_the_fast_end_of_the_front():
    # (accuracy, latency): the fastest point is far less accurate but on the front
    pts = [(0.90, 3.0), (0.50, 0.5), (0.80, 2.9), (0.85, 2.95), (0.40, 1.0), (0.30, 2.0)]
    order = pareto_order(pts)
    assert set(order[:2]) == {0, 1}  # both ends of the front first (crowding distance)
    assert order.index(4) > order.index(2) and order.index(5) == 5  # dominated ones last
    by_accuracy = sorted(range(len(pts)), key=lambda i: -pts[i][0])
    assert 1 not in by_accuracy[:2]  # ranking by accuracy alone would starve it


def test_band_order_ranks_by_signal_within_latency_bands():
    # six points, three latency bands of two: (0, 1) fast, (2, 3) middle, (4, 5) slow
    pts = [(0.50, 0.5), (0.40, 0.6), (0.70, 1.5), (0.80, 1.6), (0.90, 2.5), (0.60, 2.6)]
    order = band_order(pts, 3)
    assert order[:3] == [4, 3, 0]  # each band's best, bands ordered by their best signal
    assert order[3:] == [2, 5, 1]  # then each band's second
    assert pareto_order(pts)[:2] != order[:2]  # the fastest point is not promoted for being an end
    assert sorted(band_order(pts[:2], 3)) == [0, 1] and band_order([], 3) == []


def test_an_unknown_promotion_order_is_one_error(tmp_path):
    from nas.errors import SearchError

    with pytest.raises(SearchError, match="--promote must be one of pareto, bands"):
        _cfg(tmp_path, "x", promote="crowd").validate()


def _cfg(tmp_path, name, trials_=6, rungs_=3, data="builtin", **kw):
    return SearchConfig(trials=trials_, workers=2, data=data, out=str(tmp_path), name=name, references=0,
                        distill=False, proxy=dict(TINY_PROXY), fidelity="halving", eta=2, rungs=rungs_,
                        proxy_kind="train", **kw)


@pytest.fixture(scope="module")
def halving_run(tmp_path_factory, ray_session):
    tmp = tmp_path_factory.mktemp("halving")
    # the smaller data: the search trains on 192 images either way; the winner test tests on 300
    return tmp, run_search(_cfg(tmp, "h", data=str(small_builtin(tmp / "small.npz"))))


def test_a_halving_search_promotes_the_best_of_each_rung_and_records_every_rung(halving_run):
    tmp, res = halving_run
    study = open_study(res.study_name, res.storage)
    rows = {r.number: r for r in read_trials(study) if r.status == "evaluated"}
    assert len(rows) == 6
    promoted = {n: study.user_attrs[f"{RUNGS_ATTR}{n}"] for n in rows if f"{RUNGS_ATTR}{n}" in study.user_attrs}
    at = {k: [n for n in rows if (k == 0 or any(r["rung"] == k for r in promoted.get(n, [])))] for k in range(3)}
    # eta 2: half of each rung goes on, exactly (the promotion cap): 6 -> 3 -> 1
    assert [len(at[k]) for k in range(3)] == [6, 3, 1], at
    # the first promotion is the Pareto-best of the first two base results
    first_two = sorted(rows, key=lambda n: study.trials[n].datetime_complete)[:2]
    pts = [(rows[n].rung_accuracy[0], rows[n].latency_ms) for n in first_two]
    assert first_two[pareto_order(pts)[0]] in at[1]
    for n, recs in promoted.items():
        for rec in recs:
            assert rec["status"] == "evaluated" and rec["epochs"] == 2 ** rec["rung"] * TINY_PROXY["epochs"]
            assert rec["seconds"] > 0 and math.isfinite(rec["val_loss"])
        row = rows[n]
        assert row.rung == max(r["rung"] for r in recs) and row.accuracy == recs[-1]["accuracy"]
        assert len(row.rung_accuracy) == row.rung + 1
        # what Optuna was told is the base rung: one comparable value for every candidate
        assert study.trials[n].values[0] == row.rung_accuracy[0]
    assert study.user_attrs[PROMOTING_ATTR] == []


def test_the_report_and_trials_csv_show_rungs_and_checkpoints_are_pruned_to_the_front(halving_run):
    tmp, res = halving_run
    run = tmp / "h"
    import csv

    rows = list(csv.DictReader((run / "trials.csv").open()))
    assert any(r["rung"] == "2" and r["rung_accuracy"].count("/") == 2 for r in rows)
    html = (run / "report.html").read_text()
    assert "successive halving" in html and "<th>rung</th>" in html
    import json

    front = json.loads((run / "pareto.json").read_text())
    kept = {int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("trial-*.pt")}
    best = next(r.number for r in read_trials(open_study(res.study_name, res.storage))
                if r.key == res.best_key and r.status == "evaluated")
    assert kept == {f["number"] for f in front} | {best}
    from nas.train import load_state

    for n in kept:  # weights only: the optimizer state is dropped once no rung can follow
        assert load_state(checkpoint_path(run, n).read_bytes())["optimizer"] is None


def test_an_interrupted_promotion_runs_again_on_resume_and_nothing_else_does(halving_run, tmp_path):
    tmp, _ = halving_run
    run = copy_run(tmp / "h", tmp_path / "r")  # a copy of the finished halving run: this test changes it
    _, meta = read_run_config(run)  # its storage, in the copy
    study = open_study(meta.study_name, meta.storage)
    # a trial that stopped at rung 1 (of 3): rung 2 is full, so the one promotion due is the rerun
    top = [r for r in read_trials(study) if r.rung == 1][0]
    before = {r.number: (r.accuracy, r.rung) for r in read_trials(study)}
    # as a driver killed while that trial trained at rung 1 leaves it: rung 0 done, rung 1 in flight
    study.set_user_attr(f"{RUNGS_ATTR}{top.number}", [])
    study.set_user_attr(PROMOTING_ATTR, [[top.number, 1]])
    # the rung-1 checkpoint it continues from (pruning kept weights only: it restarts the momentum)
    log_lines = len((run / "search.log").read_text().splitlines())
    resume_search(run)
    after = read_trials(open_study(meta.study_name, meta.storage))
    assert len(after) == len(before)  # no new candidate
    assert {r.number: r.rung for r in after} == {n: v[1] for n, v in before.items()}
    new_log = (run / "search.log").read_text().splitlines()[log_lines:]
    assert [ln for ln in new_log if " rung " in ln] and all(f"trial {top.number} rung 1" in ln
                                                            for ln in new_log if " rung " in ln)
    for r in after:
        if r.number != top.number:
            assert (r.accuracy, r.rung) == before[r.number]


def test_a_failed_promotion_keeps_the_lower_rung(halving_run):
    tmp, res = halving_run
    study = open_study(res.study_name, res.storage)
    ladder = Ladder(study, tmp / "h", Rungs(2, 3))
    n = next(r.number for r in read_trials(study) if r.rung == 1)
    acc1 = next(r.accuracy for r in read_trials(study) if r.number == n)
    from nas.search import Promotion
    from nas.train import ProxyBudget

    task = Promotion(n, 2, next(r.key for r in read_trials(study) if r.number == n), 4.0, ProxyBudget(), None)
    assert ladder.finish(task, "worker died") == f"trial {n} rung 2: FAILED: worker died (rung 1 result kept)"
    row = next(r for r in read_trials(study) if r.number == n)
    assert row.rung == 1 and row.accuracy == acc1 and row.rung_accuracy[2] is None
    assert ladder.next_promotion() != (n, 2)  # not tried again


@pytest.mark.slow
def test_the_winner_continues_from_its_top_rung_weights(halving_run):
    from nas.winner import DistillConfig, distill_run

    tmp, res = halving_run
    rows = read_trials(open_study(res.study_name, res.storage))
    kept = [r for r in rows if checkpoint_path(tmp / "h", r.number).is_file()]
    pick = min(kept, key=lambda r: (r.resolution, r.number))  # the cheapest to export at its own side
    card = distill_run(tmp / "h", DistillConfig(pick=f"trial={pick.number}", start="auto", continue_epochs=0.2, tflite=False,
                                                own_side_epochs=0, measure_host=False, out="w1"))
    assert card.trained_at.start == f"continued from the search's rung-{pick.rung} weights for 0.2 epochs"
    assert card.test_accuracy_fp32 > 0.1
    # the default trains from scratch (tests/test_distill.py exports that path in full)
    assert DistillConfig().start == "scratch"
