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
            over = t.constraints["0"]  # Optuna's own reading of the constraint record: the list, in names order
            assert over == constraints_of(t, loaded.user_attrs[CONSTRAINT_NAMES_ATTR])["latency_over_budget_ms"]
            assert over == t.user_attrs["latency_ms"] - meta.latency_budget_ms
            assert (over > 0) == (t.user_attrs["status"] == "over_budget") == (t not in feasible)


def test_optuna_dashboard_shows_the_metric_names(run5):
    """optuna-dashboard 0.21 names the objectives and reads each trial's constraint list (README)."""
    pytest.importorskip("optuna_dashboard")  # in the test extras
    from optuna_dashboard._named_objectives import get_objective_names
    from optuna_dashboard._serializer import serialize_frozen_trial

    study, meta, _ = load_run(run5[0] / "run")
    storage = study._storage
    study_id = storage.get_study_id_from_name(meta.study_name)
    sys_attrs = storage.get_study_system_attrs(study_id)
    assert get_objective_names(sys_attrs) == ["accuracy", "latency_ms"]
    for t in storage.get_all_trials(study_id):
        shown = serialize_frozen_trial(study_id, t, sys_attrs)  # every trial renders
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert shown["constraints"] == [t.user_attrs["latency_ms"] - meta.latency_budget_ms]


def test_constraints_of_reads_a_run_written_before_optuna_5():
    study = optuna.create_study(directions=["maximize", "minimize"])
    t = study.ask()
    study._storage.set_trial_system_attr(t._trial_id, "constraints", [1.5, -2.0])  # what Optuna 3-4 stored
    study.tell(t, [0.5, 3.0])
    assert constraints_of(study.trials[0], ["latency_over_budget_ms", "size_over_budget_kb"]) == \
        {"latency_over_budget_ms": 1.5, "size_over_budget_kb": -2.0}


def _over_budget_share(sampler: str, constrained: bool, budget_ms: float, n: int = 60) -> float:
    """A study alone (no training): each candidate priced on pixel7 and told a score that grows
    with its MACs, so the objective alone pulls toward slow networks and only the constraint
    says which are over ``budget_ms``. The share of over-budget proposals after the first 20."""
    from nas.latency import load_device
    from nas.search._sampler import make_sampler
    from nas.search._trials import set_constraints
    from nas.space import load_space

    space, profile = load_space("mobilenetv3"), load_device("pixel7")
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, 0, n))
    over = []
    for _ in range(n):
        trial = study.ask()
        cand = space.suggest(trial)
        lat = profile.latency_ms(cand, num_classes=10)
        if constrained:
            set_constraints(trial, ["latency_over_budget_ms"], [lat - budget_ms])
        study.tell(trial, [sum(op.macs for op in cand.ops(num_classes=10)) / 1e9, lat])
        over.append(lat > budget_ms)
    return sum(over[20:]) / len(over[20:])


def test_tpe_avoids_candidates_over_the_latency_budget_once_told_the_constraint():
    from nas.latency import load_device
    from nas.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    profile = load_device("pixel7")
    lats = sorted(profile.latency_ms(c, num_classes=10) for c in load_space("mobilenetv3").sample_many(200, 1))
    budget = lats[60]  # about 30% of random candidates fit
    told, random_share, blind = (_over_budget_share("tpe", True, budget), _over_budget_share("random", True, budget),
                                 _over_budget_share("tpe", False, budget))
    assert random_share > 0.5 and blind > 0.5  # the objective alone pulls over the budget
    assert told < random_share - 0.25 and told < blind - 0.25


def test_rows_and_counts_agree_with_the_study(run5):
    study, _, _ = load_run(run5[0] / "run")
    rows = read_trials(study)
    c = status_counts(rows)
    assert c["evaluated"] + c["duplicate"] + c["failed"] == 5 and c["running"] == 0
    for r in rows:
        assert r.resolution == int(r.key.split(":r")[1].split(":")[0])  # the candidate's own side
        if r.status == "evaluated":
            assert r.proxy_side and r.proxy_side <= 28 and len(r.node) <= 12


def _proposals(sampler: str, placeholder: float, n: int = 40, named: bool = False) -> tuple[list[str], optuna.Study]:
    """A study alone, told as the driver tells it: a candidate over the pixel7 budget, or over a
    MACs budget (a second constraint, as --memory-kb adds), COMPLETE with ``placeholder`` as its
    accuracy and its violated constraints, the others a score from their MACs. ``named``: the
    constraints written as hwnas wrote them before (Optuna 5's ``Trial.set_constraint``, one per
    name), not as ``set_constraints`` writes them (one list). The candidates proposed, in order."""
    from nas.latency import load_device
    from nas.search._sampler import make_sampler
    from nas.search._trials import mark_over_budget, set_constraints
    from nas.space import load_space

    space, profile = load_space("mobilenetv3"), load_device("pixel7")
    budget, mmacs = 3.0, 60.0
    names = ["latency_over_budget_ms", "macs_over_budget_m"]
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, 0, n))
    keys = []
    for _ in range(n):
        trial = study.ask()
        cand = space.suggest(trial)
        lat = profile.latency_ms(cand, num_classes=10)
        macs = sum(op.macs for op in cand.ops(num_classes=10)) / 1e6
        cons = [lat - budget, macs - mmacs]
        if named:
            for name, v in zip(names, cons):
                trial.set_constraint(name, v)
        else:
            set_constraints(trial, names, cons)
        over = [f"latency {lat:.2f} ms > {budget:.2f} ms"] * (lat > budget) + [f"MACs {macs:.0f}M > 60M"] * (macs > mmacs)
        if over:
            mark_over_budget(trial, over)
            study.tell(trial, [placeholder, lat])
        else:
            study.tell(trial, [macs / 1e3, lat])
        keys.append(cand.key)
    return keys, study


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_an_over_budget_trial_says_its_accuracy_is_a_placeholder_that_no_sampler_reads(sampler):
    """Issue 25: optuna-dashboard showed over-budget trials with accuracy 0.0, as if measured. They
    stay COMPLETE with their violated constraint (NSGA-II builds populations from COMPLETE trials
    only; TPE ranks infeasible ones by their violation), and say in a user attribute that the 0.0
    is a placeholder. Proof that neither sampler reads it: another placeholder, the same proposals.
    And the constraints written as the list the dashboard reads propose what the named ones did."""
    from nas.search import OVER_BUDGET_ATTR, constraints_of

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = ["latency_over_budget_ms", "macs_over_budget_m"]
    keys, study = _proposals(sampler, 0.0)
    over = [t for t in study.trials if t.user_attrs.get("status") == "over_budget"]
    assert 5 <= len(over) <= 35  # both kinds are proposed, so the samplers had something to rank
    assert sum(constraints_of(t, names)["latency_over_budget_ms"] > 0 for t in over) >= 2
    assert sum(constraints_of(t, names)["macs_over_budget_m"] > 0 for t in over) >= 2  # each constraint binds
    for t in over:
        assert t.state == optuna.trial.TrialState.COMPLETE and t.values[0] == 0.0
        assert max(t.constraints.values()) > 0 and list(t.constraints) == ["0", "1"]  # as Optuna reads them
        why = t.user_attrs[OVER_BUDGET_ATTR]
        assert why.startswith("not trained (") and " > " in why and "its accuracy 0.0 is a placeholder" in why
    assert not any(OVER_BUDGET_ATTR in t.user_attrs for t in study.trials if t not in over)
    assert _proposals(sampler, 0.77)[0] == keys
    # the constraints as hwnas wrote them before (named, which the dashboard does not read): the same proposals
    before, named = _proposals(sampler, 0.0, named=True)
    assert before == keys
    assert [constraints_of(t, names) for t in named.trials] == [constraints_of(t, names) for t in study.trials]


def test_the_dashboard_note_says_what_the_zero_accuracy_of_an_over_budget_trial_is():
    pytest.importorskip("optuna_dashboard")  # in the test extras
    from optuna_dashboard import get_note
    from optuna_dashboard._serializer import serialize_frozen_trial

    from nas.search import DASHBOARD_NOTE, OVER_BUDGET_ATTR
    from nas.search._trials import write_dashboard_note

    study = optuna.create_study(directions=["maximize", "minimize"])
    assert write_dashboard_note(study)
    assert get_note(study) == DASHBOARD_NOTE and "accuracy 0.0 as a placeholder" in DASHBOARD_NOTE
    _, told = _proposals("random", 0.0, n=12)
    t = next(t for t in told.trials if t.user_attrs.get("status") == "over_budget")
    shown = serialize_frozen_trial(told._study_id, t, {})  # what the dashboard's trial page lists
    assert {"key": OVER_BUDGET_ATTR, "value": t.user_attrs[OVER_BUDGET_ATTR]} in shown["user_attrs"]


@pytest.mark.parametrize("named", [False, True])
def test_the_dashboard_draws_over_budget_trials_as_infeasible(named):
    """Issue 25: optuna-dashboard plotted an over-budget trial's placeholder accuracy 0.0 as a
    feasible trial's. It reads a trial's constraints from the list ``set_constraints`` writes and
    draws the trial grey, as an "Infeasible Trial", when a value is positive (its TypeScript:
    ``constraints.every(c => c <= 0)`` is feasible). Optuna 5's named constraints, which hwnas wrote
    before, reach it as no constraint at all: every trial feasible."""
    pytest.importorskip("optuna_dashboard")
    from optuna_dashboard._serializer import serialize_frozen_trial

    _, told = _proposals("random", 0.0, n=16, named=named)
    over = [t.user_attrs.get("status") == "over_budget" for t in told.trials]
    assert 0 < sum(over) < len(over)
    shown = [serialize_frozen_trial(told._study_id, t, {})["constraints"] for t in told.trials]
    infeasible = [not all(c <= 0 for c in cons) for cons in shown]  # the dashboard's own test
    if named:
        assert shown == [[]] * len(over) and not any(infeasible)  # the bug: all drawn as measured
    else:
        assert infeasible == over and all(len(c) == 2 for c in shown)
