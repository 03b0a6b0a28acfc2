"""The ``--pick`` rules that choose a run's winner among its trials."""

from __future__ import annotations

import re

from nas.errors import DistillError
from nas.search import TrialRow, pareto_front

__all__ = ["parse_rule", "pick_winner", "winner_folder", "rule_of_folder", "device_of_folder"]


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


def winner_folder(pick: str, device: str | None = None) -> str:
    """Where a pick's winner goes in the run: winner/ for best, winners/<rule>/ for the others
    (latency<=2.5 -> winners/latency-le-2.5, trial=12 -> winners/trial-12). ``device`` (a run on
    several devices): winner/<device>/ and winners/<device>/<rule>/."""
    kind, value = parse_rule(pick)
    if kind == "best":
        return "winner" if device is None else f"winner/{device}"
    name = "knee" if kind == "knee" else f"{'latency-le' if kind == 'latency' else 'trial'}-{value:g}"
    return f"winners/{name}" if device is None else f"winners/{device}/{name}"


def rule_of_folder(folder: str) -> str | None:
    """The ``--pick`` rule whose winner ``winner_folder`` puts in ``folder`` (with or without a
    device); None for a folder of the user's own naming (``--out``)."""
    parts = folder.split("/")
    if parts[0] == "winner" and len(parts) <= 2:
        return "best"
    if parts[0] != "winners" or len(parts) not in (2, 3):
        return None
    name = parts[-1]
    if name == "knee":
        return "knee"
    for prefix, rule in (("latency-le-", "latency<="), ("trial-", "trial=")):
        if name.startswith(prefix):
            return rule + name[len(prefix):]
    return None


def device_of_folder(folder: str) -> str | None:
    """The device a winner folder of a run on several devices is for (winner/<device>/,
    winners/<device>/<rule>/); None for a one-device layout or a folder of the user's naming."""
    parts = folder.split("/")
    if (parts[0] == "winner" and len(parts) == 2) or (parts[0] == "winners" and len(parts) == 3):
        return parts[1]
    return None
