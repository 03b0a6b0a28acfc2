"""The Pareto front of a run's trials, its hypervolume, and the rules that pick a winner.

Kept as plain functions over ``TrialRow`` lists rather than Optuna's ``study.best_trials``:
the front is drawn from trained trials within the budget with a repeated key counted once,
and ``pick_winner`` takes fronts of filtered subsets (``latency<=X``, ``knee``), which a
study-level query cannot express.
"""

from __future__ import annotations

import re

from nas.errors import DistillError
from nas.trials import TrialRow

__all__ = ["pareto_front", "hypervolume_2d", "parse_rule", "pick_winner", "accuracy_at"]


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


def parse_rule(rule: str) -> tuple[str, float | None]:
    rule = rule.strip().replace(" ", "")
    if rule in ("best", "knee"):
        return rule, None
    m = re.fullmatch(r"(latency<=|trial=)([0-9]*\.?[0-9]+)", rule)
    if not m:
        raise DistillError(f"unknown --pick rule {rule!r}: use best, knee, latency<=MS or trial=N")
    return ("latency" if m.group(1) == "latency<=" else "trial"), float(m.group(2))


def pick_winner(rows: list[TrialRow], budget_ms: float, rule: str = "best") -> TrialRow:
    """The trial that ``rule`` picks among trained trials within the budget: ``best`` most
    accurate at its highest rung (ties: lower latency, then the earlier trial; with successive
    halving that is the best of the top rung, as Hyperband picks); ``latency<=X`` most accurate at or
    below X ms; ``knee`` the front point farthest from the line through the front's ends
    (accuracy and latency normalised); ``trial=N`` that trial."""
    kind, value = parse_rule(rule)
    trained = [r for r in rows if r.status == "evaluated" and r.accuracy is not None]
    if kind == "trial":
        for r in trained:
            if r.number == int(value):
                return r
        raise DistillError(f"trial {int(value)} is not a trained trial of this run")
    pool = [r for r in trained if r.latency_ms <= budget_ms]
    if kind == "latency":
        pool = [r for r in pool if r.latency_ms <= value]
    if not pool:
        where = f"at or below {value} ms" if kind == "latency" else f"within the {budget_ms:.2f} ms budget"
        raise DistillError(f"no trained trial {where}")
    if kind == "knee":
        front = pareto_front(pool, budget_ms)
        if len(front) <= 2:
            return max(front, key=lambda r: (r.accuracy, -r.latency_ms))
        a0, a1 = front[0].accuracy, front[-1].accuracy
        l0, l1 = front[0].latency_ms, front[-1].latency_ms

        def dist(r) -> float:
            x = (r.latency_ms - l0) / max(l1 - l0, 1e-12)
            y = (r.accuracy - a0) / max(a1 - a0, 1e-12)
            return y - x  # distance above the diagonal (up to a constant factor)
        return max(front, key=dist)
    return max(pool, key=lambda r: (r.accuracy, -r.latency_ms, -r.number))
