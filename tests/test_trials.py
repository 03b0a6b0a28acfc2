"""nas.trials: the record a trial leaves in the study, read back as Optuna (and its dashboard) read it."""

import optuna

from nas.report import load_run
from nas.trials import read_trials, status_counts


def test_objectives_are_named_and_the_budget_is_an_optuna_constraint(run5):
    study, meta, _ = load_run(run5[0] / "run")
    loaded = optuna.load_study(study_name=meta.study_name, storage=meta.storage)  # as any Optuna tool opens it
    assert loaded.metric_names == ["accuracy", "latency_ms"]
    for t in loaded.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            over = t.constraints["latency_over_budget_ms"]  # Optuna's own constraint record
            assert over == t.user_attrs["latency_ms"] - meta.latency_budget_ms
            assert (over > 0) == (t.user_attrs["status"] == "over_budget")


def test_rows_and_counts_agree_with_the_study(run5):
    study, _, _ = load_run(run5[0] / "run")
    rows = read_trials(study)
    c = status_counts(rows)
    assert c["evaluated"] + c["duplicate"] + c["failed"] == 5 and c["running"] == 0
    for r in rows:
        assert r.resolution == int(r.key.split(":r")[1].split(":")[0])  # the candidate's own side
        if r.status == "evaluated":
            assert r.proxy_side and r.proxy_side <= 28 and len(r.node) <= 12
