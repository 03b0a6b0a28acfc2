"""The Pareto front of a run's trials, its hypervolume and its best trial.

Kept as plain functions over ``TrialRow`` lists rather than Optuna's ``study.best_trials``:
the front is drawn from trained trials within the budget with a repeated key counted once,
and the winner's rules (``nas.winner``) take fronts of filtered subsets (``latency<=X``,
``knee``), which a study-level query cannot express.
"""

from __future__ import annotations

from nas.search._trials import TrialRow

__all__ = ["pareto_front", "hypervolume_2d", "accuracy_at", "best_trial"]


def pareto_front(rows: list[TrialRow], budget_ms: float, size: bool = False, memory: bool = False) -> list[TrialRow]:
    """Non-dominated trained trials within the budget (accuracy up; latency, bytes if ``size``
    and peak memory if ``memory``, down), sorted by latency; a repeated key appears once.

    With successive halving, two trials are compared at the highest rung both reached: a trial
    promoted to 9 epochs does not dominate one trained 1 epoch by its longer training, only by
    being better at 1 epoch too (else a front of one promoted trial was seen)."""
    pts = {}
    for r in rows:
        if r.trained and r.latency_ms is not None and r.latency_ms <= budget_ms:
            pts.setdefault(r.key, r)
    cand = list(pts.values())

    def objs(r: TrialRow, rung: int) -> tuple:
        return (-accuracy_at(r, rung), r.latency_ms) + ((r.bytes or 0,) if size else ()) + \
            ((r.memory or 0,) if memory else ())

    def dominates(q: TrialRow, r: TrialRow) -> bool:
        k = min(q.rung, r.rung)  # successive halving: compare at the rung both reached
        oq, o = objs(q, k), objs(r, k)
        return all(a <= b for a, b in zip(oq, o)) and oq != o

    front = [r for r in cand if not any(dominates(q, r) for q in cand)]
    return sorted(front, key=lambda r: (r.latency_ms, -r.accuracy))


def accuracy_at(r: TrialRow, rung: int) -> float:
    """A trial's proxy accuracy at ``rung`` (or the highest finished rung below it)."""
    for k in range(min(rung, len(r.rung_accuracy) - 1), -1, -1):
        if r.rung_accuracy[k] is not None:
            return r.rung_accuracy[k]
    return r.accuracy


def hypervolume_2d(points: list[tuple[float, float]], budget_ms: float) -> float:
    """Area dominated by (accuracy, latency) points, normalised to [0, 1]: reference point
    accuracy 0 and latency = budget; latency is divided by the budget."""
    pts = sorted((lat / budget_ms, acc) for acc, lat in points if lat <= budget_ms and acc > 0)
    # sweep by latency: the staircase of running-best accuracy, each step to the next point
    steps, best = [], 0.0
    for lat, acc in pts:
        if acc > best:
            steps.append((lat, acc))
            best = acc
    area = 0.0
    for i, (lat, acc) in enumerate(steps):
        nxt = steps[i + 1][0] if i + 1 < len(steps) else 1.0
        area += acc * (nxt - lat)
    return area


def best_trial(rows: list[TrialRow], budget_ms: float) -> TrialRow | None:
    """The most accurate trained trial within the budget at its highest rung (ties: lower
    latency, then the earlier trial; with successive halving that is the best of the top rung,
    as Hyperband picks); None when no trained trial is within the budget."""
    pool = [r for r in rows if r.status == "evaluated" and r.accuracy is not None and r.latency_ms <= budget_ms]
    return max(pool, key=lambda r: (r.accuracy, -r.latency_ms, -r.number)) if pool else None
