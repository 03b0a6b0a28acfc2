"""nas.search._trials: the record a trial leaves in the study, read back as Optuna (and its dashboard) read it."""

import optuna
import pytest

from nas.report import load_run
from nas.search import CONSTRAINT_NAMES_ATTR, constraints_of, read_trials, status_counts


def test_objectives_are_named_and_the_budget_is_an_optuna_constraint(run5):
    study, meta, _ = load_run(run5[0] / "run")
    loaded = optuna.load_study(study_name=meta.study_name, storage=meta.storage)  # as any Optuna tool opens it
    assert loaded.metric_names == ["accuracy", "latency_ms"]
    assert loaded.user_attrs[CONSTRAINT_NAMES_ATTR] == ["latency_over_budget_ms"]
    feasible = optuna.study._constrained_optimization._get_feasible_trials(loaded.trials)
    for t in loaded.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            over = t.constraints["0"]  # Optuna's own reading of the constraint record
            assert over == constraints_of(t, loaded.user_attrs[CONSTRAINT_NAMES_ATTR])["latency_over_budget_ms"]
            assert over == t.user_attrs["latency_ms"] - meta.latency_budget_ms
            assert (over > 0) == (t.user_attrs["status"] == "over_budget") == (t not in feasible)


def test_optuna_dashboard_shows_the_metric_names_and_which_trials_are_feasible(run5):
    pytest.importorskip("optuna_dashboard")  # in the test extras
    from optuna_dashboard._named_objectives import get_objective_names
    from optuna_dashboard._serializer import serialize_frozen_trial

    study, meta, _ = load_run(run5[0] / "run")
    storage = study._storage
    study_id = storage.get_study_id_from_name(meta.study_name)
    sys_attrs = storage.get_study_system_attrs(study_id)
    assert get_objective_names(sys_attrs) == ["accuracy", "latency_ms"]
    statuses = set()
    for t in storage.get_all_trials(study_id):
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        shown = serialize_frozen_trial(study_id, t, sys_attrs)["constraints"]  # what the dashboard draws
        assert shown == [t.user_attrs["latency_ms"] - meta.latency_budget_ms]
        assert (shown[0] > 0) == (t.user_attrs["status"] == "over_budget")  # infeasible exactly when over
        statuses.add(t.user_attrs["status"])
    assert "evaluated" in statuses


def test_rows_and_counts_agree_with_the_study(run5):
    study, _, _ = load_run(run5[0] / "run")
    rows = read_trials(study)
    c = status_counts(rows)
    assert c["evaluated"] + c["duplicate"] + c["failed"] == 5 and c["running"] == 0
    for r in rows:
        assert r.resolution == int(r.key.split(":r")[1].split(":")[0])  # the candidate's own side
        if r.status == "evaluated":
            assert r.proxy_side and r.proxy_side <= 28 and len(r.node) <= 12
