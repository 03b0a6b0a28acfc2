"""Issue 28, item 5: how often does the whole-network yardstick agree with itself?

    python benchmarks/yardstick.py [--n 16] [--spaces mobilenetv3 shufflenetv2]
        [--runtimes onnxruntime litert] [--rounds 7] [--runs 10] [--group 16] [--old-runs 30]
        [--quick] [--out benchmarks/results/yardstick.json]

The same networks (``--n`` random candidates per space, seed ``--seed``, each fp32 and int8:
64 networks by default) are exported once per runtime (ONNX for onnxruntime, .tflite for
LiteRT/XNNPACK, as the host profiles time them), then timed twice:

- the yardstick (``nas.latency.time_interleaved``), as calibration and validation use it: a
  group of ``--group`` networks loaded at once, ``--rounds`` rounds, each network ``--runs``
  runs per round in a seeded shuffled order; the second timing uses another order. Every
  statistic of ``nas.latency.STATS`` is computed from the same runs;
- the old way: each network's ``--old-runs`` consecutive runs back to back, median.

For each statistic: the share of networks whose two timings agree within ±10% (and ±5%), per
runtime and precision and over all. The statistic with the highest overall share within ±10%
is the one ``YARDSTICK_STAT`` (nas/latency/_yardstick.py) should name; the script says whether it
does. Run nothing else on the machine meanwhile. ``--quick``: 2 networks per space, 3 rounds
of 3 runs, a check that it runs (its figures mean nothing), written to ./yardstick_quick.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

import nas  # noqa: E402
from nas.export import litert  # noqa: E402
from nas.latency import STATS, YARDSTICK_STAT, agreement, network_runner, time_consecutive, time_interleaved  # noqa: E402


def time_runtime(runtime: str, nets: list, args, log) -> list[dict]:
    """Per network: {"precision", "key", "stats": [first, second], "old": [first, second]}."""
    rows = [{"precision": p, "key": c.key, "stats": [], "old": []} for p, c in nets]
    for start in range(0, len(nets), args.group):
        chunk = nets[start:start + args.group]
        with tempfile.TemporaryDirectory(prefix="hwnas-yardstick-") as tmp:
            runners = [network_runner(c, p == "i8", Path(tmp), runtime=runtime, stem=f"net{j}")
                       for j, (p, c) in enumerate(chunk)]
            log(f"{runtime}: exported networks {start + 1}-{start + len(chunk)} of {len(nets)}")
            for rep in range(2):
                for j, s in enumerate(time_interleaved(runners, args.rounds, args.runs,
                                                       seed=args.seed * 7919 + 1000 * rep + start)):
                    rows[start + j]["stats"].append(s)
            for rep in range(2):  # the old way: each network's runs back to back, one network after another
                for j, run in enumerate(runners):
                    rows[start + j]["old"].append(time_consecutive(run, runs=args.old_runs))
            del runners
        log(f"{runtime}: timed networks {start + 1}-{start + len(chunk)}")
    return rows


def shares(rows: list[dict]) -> dict:
    out = {}
    for stat in STATS:
        a = [r["stats"][0][stat] for r in rows]
        b = [r["stats"][1][stat] for r in rows]
        out[stat] = {"within_10pct": agreement(a, b, 0.10), "within_5pct": agreement(a, b, 0.05)}
    a, b = [r["old"][0] for r in rows], [r["old"][1] for r in rows]
    out["old: median of consecutive runs"] = {"within_10pct": agreement(a, b, 0.10),
                                              "within_5pct": agreement(a, b, 0.05)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16, help="candidates per space (each fp32 and int8)")
    ap.add_argument("--spaces", nargs="+", default=["mobilenetv3", "shufflenetv2"])
    ap.add_argument("--runtimes", nargs="+", default=["onnxruntime", "litert"], choices=["onnxruntime", "litert"])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--group", type=int, default=16, help="networks loaded and interleaved at once "
                                                          "(validation's nas.latency._validate.GROUP)")
    ap.add_argument("--old-runs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="2 networks per space, 3 rounds of 3 runs")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.n, args.rounds, args.runs, args.old_runs = 2, 3, 3, 5
    out_path = args.out or (Path("yardstick_quick.json") if args.quick else
                          Path(__file__).parent / "results" / "yardstick.json")
    runtimes = [r for r in args.runtimes if r != "litert" or litert.available()]
    if runtimes != args.runtimes:
        print('litert skipped: needs pip install "hwnas[litert]"', file=sys.stderr)
    cands = [c for s in args.spaces for c in nas.load_space(s).sample_many(args.n, args.seed)]
    nets = [(p, c.replace_bits(b)) for c in cands for p, b in (("f32", 32), ("i8", 8))]
    t0 = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - t0:5.0f}s] {msg}", file=sys.stderr, flush=True)

    raw: dict = {}
    for rt in runtimes:
        raw[rt] = time_runtime(rt, nets, args, log)
        out_path.write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                        "raw": raw}, indent=1))  # keep partial work
    summary = {}
    rows = []
    for rt in runtimes:
        for prec in ("f32", "i8", "all"):
            sel = [r for r in raw[rt] if prec == "all" or r["precision"] == prec]
            summary[f"{rt}/{prec}"] = shares(sel)
    every = [r for rt in runtimes for r in raw[rt]]
    summary["all"] = shares(every)
    names = list(STATS) + ["old: median of consecutive runs"]
    for name in names:
        rows.append([name] + [f"{summary[k][name]['within_10pct'] * 100:.0f}% / {summary[k][name]['within_5pct'] * 100:.0f}%"
                              for k in [f"{rt}/{p}" for rt in runtimes for p in ("f32", "i8")] + ["all"]])
    print(f"Measured on: {machine()}; {len(nets)} networks per runtime, {args.rounds} rounds x {args.runs} runs, "
          f"groups of {args.group}; two timings of each network agree within ±10% / ±5%\n")
    print(table(["statistic"] + [f"{rt} {p}" for rt in runtimes for p in ("fp32", "int8")] + ["all"], rows))
    best = max(STATS, key=lambda s: (summary["all"][s]["within_10pct"], summary["all"][s]["within_5pct"]))
    print(f"\nbest statistic: {best} ({summary['all'][best]['within_10pct'] * 100:.0f}% within ±10%); "
          f"YARDSTICK_STAT is {YARDSTICK_STAT}" + ("" if best == YARDSTICK_STAT else f": change it to {best!r}")
          + f"; goal >= 95% within ±10%: {'met' if summary['all'][best]['within_10pct'] >= 0.95 else 'missed'}")
    med = {rt: float(np.median([r["stats"][0][YARDSTICK_STAT] for r in raw[rt]])) for rt in runtimes}
    out_path.write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                    "wall_s": round(time.time() - t0, 1), "summary": summary, "best": best,
                                    "median_network_ms": med, "raw": raw}, indent=1))
    print(f"raw data: {out_path}")


if __name__ == "__main__":
    main()
