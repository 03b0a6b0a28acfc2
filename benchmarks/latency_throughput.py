"""Prediction throughput from a warm profile, per space and device.

    python benchmarks/latency_throughput.py

Candidates are sampled first (sampling is not timed); one pass warms the profile's per-block
cache, then the median of 5 timed passes over the same candidates is reported.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

import nas  # noqa: E402
from nas.latency import load_device  # noqa: E402


def main(n: int = 20000) -> None:
    print(f"Measured on: {machine()}\n")
    rows = []
    for dev in ("pixel7", "note10"):
        prof = load_device(dev)
        for name in nas.space_names():
            space = nas.load_space(name)
            rng = random.Random(0)
            cands = [space.sample(rng) for _ in range(n)]
            t0 = time.perf_counter()
            for c in cands:
                prof.latency_ms(c)
            cold = time.perf_counter() - t0
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                for c in cands:
                    prof.latency_ms(c)
                times.append(time.perf_counter() - t0)
            warm = statistics.median(times)
            rows.append([dev, name, n, f"{n / cold:,.0f}", f"{n / warm:,.0f}"])
    print(table(["device", "space", "candidates", "cold pass (cand/s)", "warm (cand/s, median of 5)"], rows))


if __name__ == "__main__":
    main()
