"""Issue 5 (b)-(d): trials per minute with 1 and 2 workers, driver overhead per trial, and the
wall time of the default command.

(b)/(c): the same 12 candidates (random sampler, seed 0, no budget pressure: --latency-ms 1000)
trained with the short proxy (--proxy train) on the built-in data, once with 1 worker and once with 2, on one
local Ray (num_cpus=2) warmed up by a 2-trial run. Driver overhead = per trained trial, ask +
suggest + latency prediction + submit, plus result -> tell -> trials.csv/pareto.json refresh
(SearchResult.driver_ms; medians).
(d): `nas search --device pixel7` (all defaults, distillation included) in a subprocess.

    python benchmarks/search_throughput.py [--trials 12] [--skip-default]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, portable, table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--skip-default", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "search_throughput.json"))
    args = ap.parse_args()

    import optuna
    import ray

    from nas.api import run_search
    from nas.run import SearchConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    res = json.loads(out.read_text()) if out.exists() else {}
    res["machine"] = machine()
    with tempfile.TemporaryDirectory() as tmp:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        base = dict(device="pixel7", space="mobilenetv3", sampler="random", seed=0, latency_ms=1000.0,
                    references=0, out=tmp, distill=False, proxy_kind="train")  # trials trained per minute
        run_search(SearchConfig(**base, trials=2, workers=2, name="warmup"))
        for w in (1, 2):
            r = run_search(SearchConfig(**base, trials=args.trials, workers=w, name=f"w{w}"))
            res[f"workers_{w}"] = {"trials": args.trials, "seconds": r.seconds,
                                   "trials_per_minute": args.trials / r.seconds * 60, "driver_ms": r.driver_ms,
                                   "evaluated": r.evaluated, "failed": r.failed}
            out.write_text(portable(json.dumps(res, indent=1)))
            print(f"{w} worker(s): {args.trials} trials in {r.seconds:.1f} s = "
                  f"{args.trials / r.seconds * 60:.2f} trials/min; driver {r.driver_ms}", flush=True)
        ray.shutdown()
        if not args.skip_default:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "nas", "search", "--device", "pixel7", "--out", tmp],
                               capture_output=True, text=True)
            wall = time.perf_counter() - t0
            res["default_command"] = {"seconds": wall, "returncode": p.returncode, "stdout": p.stdout[-3000:],
                                      "stderr_tail": p.stderr[-1500:]}
            run = next(Path(tmp).glob("mobilenetv3-pixel7-*"))
            card = json.loads((run / "winner" / "card.json").read_text())
            res["default_command"]["card"] = card
            out.write_text(portable(json.dumps(res, indent=1)))
            print(f"default command: {wall / 60:.1f} min, exit {p.returncode}")
    w1, w2 = res["workers_1"], res["workers_2"]
    print(table(["workers", "trials", "seconds", "trials/min", "driver ask ms", "driver tell ms", "per trial ms"],
                [[w, r["trials"], f"{r['seconds']:.1f}", f"{r['trials_per_minute']:.2f}", f"{r['driver_ms']['ask']:.1f}",
                  f"{r['driver_ms']['tell']:.1f}", f"{r['driver_ms']['per_trial']:.1f}"] for w, r in ((1, w1), (2, w2))]))
    print(f"speedup 2 vs 1 workers: {w2['trials_per_minute'] / w1['trials_per_minute']:.2f}x")


if __name__ == "__main__":
    main()
