"""Asynchronous successive halving (ASHA) across proxy training budgets: the rungs of a search.

Every candidate trains at rung 0 (the base proxy budget). Rung ``r`` is ``eta**r`` times that
budget. Whenever a worker is free, the driver asks ``Ladder.next_promotion`` first: from the top
rung down, while fewer than ``floor(n / eta)`` of the ``n`` results at rung ``r`` have been
promoted, the best of them not yet promoted (ranked by Pareto rank of (signal, latency), then
crowding distance, so the fast end of the front is not starved) goes on to rung ``r + 1``; only
when none is due is a new candidate asked for. No worker waits for a rung to fill. The cap keeps
the cost what ``Rungs.cost_per_candidate`` says: without it, a Pareto ranking that churns as
results arrive promoted 6 of 6 candidates to rung 1 in a test run (eta 2).

A promotion continues from the trial's checkpoint (weights and SGD momentum; a warm restart of
the warm-up and cosine schedule over the extra epochs, ``CONTINUE_WARMUP``), so rung ``r + 1``
costs ``eta**(r+1) - eta**r`` base budgets, not ``eta**(r+1)``. Checkpoints are files in the run
folder (``checkpoints/trial-N.pt``, the latest rung's, written atomically by the driver: they
travel to and from workers as bytes through Ray, so a cluster needs no shared disk). When the
search ends, only the checkpoints of the front's trials are kept, as weights only
(``prune_checkpoints``): the winner continues from them.

What Optuna sees: each trial is told its rung-0 result, once, when it arrives, so the sampler
learns from every candidate on one comparable budget. Results at rungs 1 and up are recorded in
the study as the study attribute ``rungs:<trial number>`` (accuracy, validation loss, seconds,
epochs, per rung); ``nas.search._trials.read_trials`` merges them, and a trial's ``accuracy`` there is
the one at its highest finished rung: the front and the winner use that. A promoted task that
fails records the failure at its rung and leaves the lower rung's result as it was.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nas._paths import atomic_write
from nas.run import Rungs
from nas.train import ProxyBudget, ProxyResult

__all__ = ["Ladder", "Promotion", "pareto_order", "band_order", "checkpoint_path", "trial_weights", "CONTINUE_WARMUP",
           "RUNGS_ATTR"]

CONTINUE_WARMUP = 0.1  # warm-up share of a continued rung's steps (benchmarks/halving_schedule.py)
RUNGS_ATTR = "rungs:"  # study user attribute prefix: "rungs:<trial number>"
PROMOTING_ATTR = "promoting"  # study user attribute: promotions in flight, for resume


@dataclass(frozen=True)
class Promotion:
    """A trial promoted to ``rung``: trained with ``budget`` from ``start`` (its checkpoint's
    state, or None: from scratch); ``epochs`` is its total once the rung finishes."""

    number: int
    rung: int
    key: str
    epochs: float
    budget: ProxyBudget
    start: dict[str, Any] | None


def checkpoint_path(run_dir: Path, number: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"trial-{number}.pt"


def trial_weights(run_dir: Path, number: int, resolution: int) -> dict | None:
    """The state dict a halving search kept for trial ``number``, when it was trained at
    ``resolution``; None when there is none (or it is unreadable: the caller trains from scratch)."""
    import pickle

    from nas.train import load_state

    path = checkpoint_path(run_dir, number)
    if not path.is_file():
        return None
    try:
        ckpt = load_state(path.read_bytes())
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError):
        return None
    return ckpt["model"] if ckpt.get("resolution") == resolution else None


def pareto_order(points: list[tuple[float, float]]) -> list[int]:
    """Indices of ``(signal, latency)`` points, best first: by non-dominated rank (signal up,
    latency down), then by crowding distance within a rank (boundary points first), then by
    signal."""
    n = len(points)
    rank = [0] * n
    remaining = set(range(n))
    level = 0
    while remaining:
        front = [i for i in remaining
                 if not any(points[j][0] >= points[i][0] and points[j][1] <= points[i][1] and points[j] != points[i]
                            for j in remaining)]
        for i in front:
            rank[i] = level
        remaining -= set(front)
        level += 1
    crowd = [0.0] * n
    for lv in range(level):
        members = [i for i in range(n) if rank[i] == lv]
        for dim in (0, 1):
            members.sort(key=lambda i: points[i][dim])
            lo, hi = points[members[0]][dim], points[members[-1]][dim]
            crowd[members[0]] = crowd[members[-1]] = math.inf
            for a, i, b in zip(members, members[1:], members[2:]):
                if hi > lo:
                    crowd[i] += (points[b][dim] - points[a][dim]) / (hi - lo)
    return sorted(range(n), key=lambda i: (rank[i], -crowd[i], -points[i][0], i))


def band_order(points: list[tuple[float, float]], bands: int) -> list[int]:
    """Indices of ``(signal, latency)`` points, best first, by signal within latency bands:
    the points are cut into ``bands`` bands of (nearly) equal count by latency, each band is
    ranked by signal, and the order takes the best of every band (the bands in order of their
    best signal), then the second of every band, and so on. Unlike ``pareto_order`` it never
    promotes the fastest candidate just for being at the front's end, yet every latency range
    keeps a way up."""
    n = len(points)
    by_latency = sorted(range(n), key=lambda i: (points[i][1], -points[i][0], i))
    groups: list[list[int]] = [[] for _ in range(max(1, min(bands, n)))]
    for pos, i in enumerate(by_latency):
        groups[pos * len(groups) // n].append(i)
    for g in groups:
        g.sort(key=lambda i: (-points[i][0], points[i][1], i))
    order: list[int] = []
    for depth in range(max((len(g) for g in groups), default=0)):
        layer = [g[depth] for g in groups if depth < len(g)]
        order += sorted(layer, key=lambda i: (-points[i][0], points[i][1], i))
    return order


class Ladder:
    """The rung results of one search, and its promotions (see the module docstring)."""

    def __init__(self, study, run_dir: Path, rungs: Rungs, signal: str = "accuracy", promote: str = "pareto"):
        self.study, self.rungs, self.signal, self.promote = study, rungs, signal, promote
        self.dir = Path(run_dir) / "checkpoints"
        self.results: dict[int, dict[int, dict]] = {}  # trial -> rung -> result
        self.latency: dict[int, float] = {}
        self.keys: dict[int, str] = {}
        self.in_flight: set[tuple[int, int]] = set()
        attrs = study.user_attrs
        for t in study.get_trials(deepcopy=False):
            a = t.user_attrs
            if a.get("status") == "evaluated" and a.get("accuracy") is not None:
                info = a.get("info", {})
                self.results[t.number] = {0: {"rung": 0, "status": "evaluated", "accuracy": a["accuracy"],
                                              "val_loss": info.get("val_loss")}}
                self.latency[t.number] = a["latency_ms"]
                self.keys[t.number] = a["key"]
                for r in attrs.get(f"{RUNGS_ATTR}{t.number}", []):
                    self.results[t.number][int(r["rung"])] = r
        self.interrupted = [tuple(p) for p in attrs.get(PROMOTING_ATTR, [])
                            if int(p[1]) not in self.results.get(int(p[0]), {})]

    # ---- checkpoints
    def checkpoint(self, number: int) -> Path:
        return checkpoint_path(self.dir.parent, number)

    def save_checkpoint(self, number: int, blob: bytes | None) -> None:
        if blob:
            self.dir.mkdir(exist_ok=True)
            atomic_write(self.checkpoint(number), blob)

    def load_checkpoint(self, number: int) -> bytes | None:
        p = self.checkpoint(number)
        return p.read_bytes() if p.is_file() else None

    # ---- results
    def add_base(self, number: int, key: str, accuracy: float, val_loss: float, latency_ms: float,
                 state: bytes | None) -> None:
        self.save_checkpoint(number, state)
        self.keys[number] = key
        self.results[number] = {0: {"rung": 0, "status": "evaluated", "accuracy": accuracy, "val_loss": val_loss}}
        self.latency[number] = latency_ms

    def record(self, number: int, rung: int, result: dict, state: bytes | None = None) -> None:
        """A promoted task's result (``status`` evaluated or failed), stored in the study."""
        if result.get("status") == "evaluated":
            self.save_checkpoint(number, state)
        result = {**result, "rung": rung, "finished": _dt.datetime.now().isoformat(timespec="milliseconds")}
        self.results.setdefault(number, {})[rung] = result
        self.in_flight.discard((number, rung))
        self.study.set_user_attr(f"{RUNGS_ATTR}{number}",
                                 [self.results[number][r] for r in sorted(self.results[number]) if r > 0])
        self._store_in_flight()

    def start(self, number: int, rung: int) -> None:
        self.in_flight.add((number, rung))
        self._store_in_flight()

    def _store_in_flight(self) -> None:
        self.study.set_user_attr(PROMOTING_ATTR, sorted([n, r] for n, r in self.in_flight))

    def _signal(self, res: dict) -> float:
        if self.signal == "val_loss" and res.get("val_loss") is not None and math.isfinite(res["val_loss"]):
            return -float(res["val_loss"])
        return float(res["accuracy"])

    def next_promotion(self) -> tuple[int, int] | None:
        """(trial, rung) to train next, or None: an interrupted promotion first (resume), then
        the highest rung with a due promotion."""
        while self.interrupted:
            n, r = (int(v) for v in self.interrupted.pop(0))
            if r not in self.results.get(n, {}) and (n, r) not in self.in_flight:
                return n, r
        for rung in range(self.rungs.count - 2, -1, -1):
            members = [n for n, rs in self.results.items()
                       if rs.get(rung, {}).get("status") == "evaluated" and n in self.latency]
            quota = len(members) // self.rungs.eta
            promoted = sum(1 for n in members if rung + 1 in self.results[n] or (n, rung + 1) in self.in_flight)
            if promoted >= quota:
                continue
            points = [(self._signal(self.results[n][rung]), self.latency[n]) for n in members]
            order = band_order(points, self.rungs.eta) if self.promote == "bands" else pareto_order(points)
            for i in order[:quota]:
                n = members[i]
                if rung + 1 not in self.results[n] and (n, rung + 1) not in self.in_flight:
                    return n, rung + 1
        return None

    # ---- the driver's side (``nas.search._driver._Search`` passes itself as ``search``)
    def next_task(self, proxy: ProxyBudget) -> Promotion | None:
        """The next due promotion, marked as started, with the budget it trains on top of the
        trial's checkpoint (or from scratch when the checkpoint is lost); None when none is due.
        The driver submits it and hands the result to ``finish``."""
        nxt = self.next_promotion()
        if nxt is None:
            return None
        number, rung = nxt
        start = self.load_checkpoint(number)
        base = proxy.epochs
        if start is None:  # checkpoint lost: train the rung's whole budget from scratch
            budget = replace(proxy, epochs=self.rungs.epochs(rung, base))
        else:
            budget = replace(proxy, epochs=self.rungs.segment(rung, base), warmup_fraction=CONTINUE_WARMUP)
        self.start(number, rung)
        return Promotion(number, rung, self.keys[number], self.rungs.epochs(rung, base), budget, start)

    def finish(self, task: Promotion, result: ProxyResult | str) -> str:
        """Record a finished promotion: its result, or the reason its task failed (a failure
        leaves the lower rung as it was). Returns the line for the run's log."""
        if isinstance(result, str) or result.failed or not math.isfinite(result.accuracy):
            reason = result if isinstance(result, str) else result.reason or "accuracy is not finite"
            self.record(task.number, task.rung, {"status": "failed", "reason": reason})
            return f"trial {task.number} rung {task.rung}: FAILED: {reason} (rung {task.rung - 1} result kept)"
        self.record(task.number, task.rung, {"status": "evaluated", "accuracy": result.accuracy,
                                             "val_loss": result.val_loss, "seconds": result.seconds,
                                             "epochs": task.epochs}, result.state)
        return (f"trial {task.number} rung {task.rung} ({task.epochs:g} epochs): acc {result.accuracy:.4f} "
                f"({result.seconds:.1f} s)")

    def base_seconds(self, task: Promotion, seconds: float) -> float:
        """A promotion's worker seconds per base budget (for the search's time-left estimate)."""
        return seconds / self.rungs.segment(task.rung, 1.0)

    def top_rung(self, number: int) -> int:
        ok = [r for r, res in self.results.get(number, {}).items() if res.get("status") == "evaluated"]
        return max(ok) if ok else 0

    def prune_checkpoints(self, keep: set[int]) -> int:
        """Delete every checkpoint but those of ``keep``, which are cut to their weights (the
        optimizer state is only needed to continue a rung). Returns bytes freed."""
        if not self.dir.is_dir():
            return 0
        import torch

        from nas.train import load_state

        freed = 0
        for p in self.dir.glob("trial-*.pt"):
            size = p.stat().st_size
            try:
                number = int(p.stem.split("-")[1])
            except (IndexError, ValueError):
                continue
            if number not in keep:
                p.unlink()
                freed += size
                continue
            ckpt = load_state(p.read_bytes())
            if ckpt.get("optimizer") is not None:
                import io

                buf = io.BytesIO()
                torch.save({**ckpt, "optimizer": None}, buf)
                atomic_write(p, buf.getvalue())
                freed += size - p.stat().st_size
        return freed
