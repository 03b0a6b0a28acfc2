"""The yardstick whole networks are timed with: interleaved rounds, several statistics.

On a shared machine the noise comes in bursts: a network whose runs all fall inside one burst is
timed slow, its neighbour timed a second later is not. Timing every network's runs back to back
(the median of 30 consecutive runs) let two timings of the same 32 networks agree within ±10%
for only 50-81% of them (issue 28). Here each round runs every network ``runs`` times, in an
order shuffled per round from a seed, over ``rounds`` rounds, so a burst touches every network a
little rather than one network a lot; each network then gets several statistics of its
``rounds * runs`` timings, and ``YARDSTICK_STAT`` is the one calibration and validation use
(chosen by ``benchmarks/yardstick.py``: the statistic whose two timings of the same networks
agree most often).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

__all__ = ["STATS", "YARDSTICK_STAT", "ROUNDS", "RUNS", "interleaved_order", "time_interleaved",
           "time_consecutive", "summarise", "agreement"]

# median: of all runs; median_round_min: the median over rounds of each round's fastest run;
# p10 / p25: percentiles of all runs; min: the fastest run
STATS = ("median", "median_round_min", "p10", "p25", "min")
# the statistic calibration and validation use, chosen by benchmarks/yardstick.py (2026-12-06, 64
# networks, quiet machine): median, p10 and p25 agreed with themselves within ±5% for 100% of
# networks, median of round minima 97%, minimum 94%; the median is what benchmark tools report
YARDSTICK_STAT = "median"
ROUNDS = 7
RUNS = 10
WARMUP = 3

Runner = Callable[[], object]
Progress = Callable[[int, int], None]


def interleaved_order(n: int, rounds: int, seed: int = 0) -> list[list[int]]:
    """The order networks run in, one shuffled permutation of ``range(n)`` per round."""
    rng = np.random.default_rng(seed)
    return [[int(i) for i in rng.permutation(n)] for _ in range(rounds)]


def summarise(per_round: Sequence[Sequence[float]]) -> dict[str, float]:
    """Every statistic of ``STATS`` (milliseconds) from one network's timings (seconds), grouped
    by round."""
    rounds = [np.asarray(r, float) for r in per_round if len(r)]
    if not rounds:
        raise ValueError("no timings to summarise")
    allv = np.concatenate(rounds) * 1e3
    return {"median": float(np.median(allv)),
            "median_round_min": float(np.median([r.min() for r in rounds]) * 1e3),
            "p10": float(np.percentile(allv, 10)),
            "p25": float(np.percentile(allv, 25)),
            "min": float(allv.min())}


def time_interleaved(runners: Sequence[Runner], rounds: int = ROUNDS, runs: int = RUNS, seed: int = 0,
                     warmup: int = WARMUP, progress: Progress | None = None) -> list[dict[str, float]]:
    """Time every runner (one call = one inference) ``runs`` times per round, the runners in a
    seeded shuffled order each round, over ``rounds`` rounds, after ``warmup`` calls each.
    Returns, per runner, ``summarise`` of its timings plus ``rounds`` and ``runs``."""
    if rounds < 1 or runs < 1:
        raise ValueError("rounds and runs must be at least 1")
    for f in runners:
        for _ in range(warmup):
            f()
    times: list[list[list[float]]] = [[[] for _ in range(rounds)] for _ in runners]
    clock = time.perf_counter
    for r, order in enumerate(interleaved_order(len(runners), rounds, seed)):
        for i in order:
            f, slot = runners[i], times[i][r]
            for _ in range(runs):
                t0 = clock()
                f()
                slot.append(clock() - t0)
        if progress:
            progress(r + 1, rounds)
    return [{**summarise(t), "rounds": rounds, "runs": runs} for t in times]


def time_consecutive(runner: Runner, runs: int = 30, warmup: int = WARMUP) -> float:
    """The old way, for comparison: the median of ``runs`` consecutive runs, milliseconds."""
    for _ in range(warmup):
        runner()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        runner()
        out.append(time.perf_counter() - t0)
    return float(np.median(out) * 1e3)


def agreement(first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray, tol: float = 0.10) -> float:
    """Share of networks whose second timing is within ``tol`` of the first (the yardstick's
    self-agreement; the same measure as a prediction against a timing)."""
    a, b = np.asarray(first, float), np.asarray(second, float)
    if len(a) != len(b) or not len(a):
        raise ValueError("agreement needs two equally long, non-empty lists of timings")
    return float(np.mean(np.abs(b / a - 1) <= tol))
