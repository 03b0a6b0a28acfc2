"""The phone onboarding loop run on this computer, and how well its profile prices whole networks.

    python benchmarks/onboarding_loop.py [--space mobilenetv3] [--samples 5] [--bits 32,8]
        [--fresh 16] [--rounds 5] [--work DIR] [--out benchmarks/results/onboarding_loop.json]

The real path except the phone (issue 28, item 2): `nas profile export-ops --format tflite`
(`export_ops`), `time_ops.sh --local` (a stand-in adb running each command here, and the
ai-edge-litert wheel's benchmark tool in place of benchmark_model, with benchmark_model's default
runs: 5 warm-up and 50 timed, at least 0.5 s and 1 s), `nas profile import` of its log, then the
profile's price of `--fresh` candidates not among the sampled ones, each as fp32 and (with 8 in
`--bits`) int8, against the same networks exported whole as `.tflite` and timed by the same tool.

Timing: the networks are timed in `--rounds` interleaved rounds (every network once per round,
in a seeded shuffled order), one benchmark_model_host.py run each (its Inference (avg));
a network's figure is the median over rounds. The yardstick's own noise is stated beside the
predictor's: the median of the odd rounds against that of the even rounds (share within ±10%).
Also reported per precision: how many of a network's ops the table held (the rest came from the
estimator), and the error of the networks whose ops were all timed.

Times things: run it on an otherwise idle machine. `--work DIR` keeps the op models, the log and
the whole-network files, and reuses them when run again (export and op timing resume where they
stopped; the whole networks are timed again, unless `--timings-from RUN.json` names an earlier
run's output with the same `--work`: then its timings are reused, the log imported again and the
networks priced by the current code, so a change to the profile is judged on the same timings).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

import nas  # noqa: E402
from nas.export.litert import export_tflite  # noqa: E402
from nas.latency import error_stats, export_ops, import_results, load_device  # noqa: E402
from nas.models import build_model  # noqa: E402


def time_network(tool: Path, path: Path) -> float:
    """Milliseconds: benchmark_model_host.py's Inference (avg) with benchmark_model's defaults."""
    proc = subprocess.run([sys.executable, str(tool), f"--graph={path}", "--num_threads=1", "--warmup_runs=5",
                           "--num_runs=50"], capture_output=True, text=True, timeout=600)
    m = re.search(r"Inference \(avg\): ([0-9.eE+-]+)", proc.stdout)
    if proc.returncode or not m:
        raise SystemExit(f"{path}: the benchmark tool failed: {proc.stderr[-500:]}")
    return float(m.group(1)) / 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="mobilenetv3")
    ap.add_argument("--samples", type=int, default=5, help="candidates whose ops are exported and timed")
    ap.add_argument("--bits", default="32,8")
    ap.add_argument("--fresh", type=int, default=16, help="candidates priced and timed whole, per precision")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--timings-from", type=Path, default=None,
                    help="an earlier run's JSON (same --work): reuse its whole-network timings instead of timing "
                         "again; the log is imported and the networks priced by this code (a profile change "
                         "judged on the same timings)")
    args = ap.parse_args()
    bits = tuple(int(b) for b in args.bits.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="onboarding_loop_"))
    work.mkdir(parents=True, exist_ok=True)
    ops_dir, t0 = work / "ops", time.time()

    # 1-3: export, time_ops.sh --local, import
    log = ops_dir / "benchmark_log.txt"
    export_ops([args.space], ops_dir, samples=args.samples, seed=args.seed, bits=bits, fmt="tflite",
               cool_down_s=0)  # resumes: op models already in the folder are kept
    t_export = time.time() - t0
    proc = subprocess.run(["sh", str(ops_dir / "time_ops.sh"), "--local"], text=True,  # resumes too
                          env={**os.environ, "PYTHON": sys.executable, "COOL_DOWN": "0"})
    if proc.returncode:
        raise SystemExit("time_ops.sh --local failed")
    res = import_results("onboarding-loop", log, work / "profiles", force=True)
    prof = load_device(res.path)
    print(f"profile: {res.ops} op timings ({len(res.skipped)} skipped); estimator leave-one-out MAPE "
          f"{res.validation['loo_mape_pct']}% over the timed ops", flush=True)

    # 4: fresh candidates, whole networks
    space = nas.load_space(args.space)
    sampled = {c.key for c in space.sample_many(args.samples, args.seed)}
    fresh = [c for c in space.sample_many(args.fresh * 3, args.seed + 1000) if c.key not in sampled][:args.fresh]
    nets = []
    for i, c in enumerate(fresh):
        for b in bits:
            cand = c.replace_bits(b)
            path = work / "nets" / f"net{i:03d}_b{b}.tflite"
            if not path.is_file():
                path.parent.mkdir(exist_ok=True)
                shape = [1, 3, cand.resolution, cand.resolution]
                calib = np.random.default_rng(1).standard_normal((4, *shape[1:])).astype(np.float32)
                export_tflite(build_model(cand, num_classes=1000).eval(), path, shape, int8=b < 32,
                              calibration=calib if b < 32 else None)
            n, m = prof.coverage(cand)
            nets.append({"key": cand.key, "bits": b, "file": str(path), "predicted_ms": prof.latency_ms(cand),
                         "ops_timed": n, "ops": m, "rounds_ms": []})
    tool = ops_dir / "benchmark_model_host.py"
    order = list(range(len(nets)))
    if args.timings_from:
        before = {(x["key"], x["bits"]): x["rounds_ms"] for x in json.loads(args.timings_from.read_text())["networks"]}
        missing = [x["key"] for x in nets if (x["key"], x["bits"]) not in before]
        if missing or not nets:
            raise SystemExit(f"{args.timings_from} did not time these networks ({len(missing)} missing): "
                             f"run with the --space, --samples, --fresh, --seed and --bits of that run")
        for x in nets:
            x["rounds_ms"] = before[(x["key"], x["bits"])]
        args.rounds = len(nets[0]["rounds_ms"])
    for r in range(0 if args.timings_from else args.rounds):
        random.Random(args.seed + r).shuffle(order)
        for j in order:
            nets[j]["rounds_ms"].append(time_network(tool, Path(nets[j]["file"])))
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    # 5: the predictor against the yardstick, beside the yardstick's own agreement
    summary, rows = {}, []
    for b in bits:
        sel = [x for x in nets if x["bits"] == b]
        y = np.array([np.median(x["rounds_ms"]) for x in sel])
        pred = np.array([x["predicted_ms"] for x in sel])
        stats = error_stats(pred, y)
        odd = np.array([np.median(x["rounds_ms"][0::2]) for x in sel])
        even = np.array([np.median(x["rounds_ms"][1::2]) if len(x["rounds_ms"]) > 1 else np.nan for x in sel])
        self_agree = float(np.mean(np.abs(odd / even - 1) <= 0.10)) if args.rounds > 1 else None
        full = [i for i, x in enumerate(sel) if x["ops_timed"] == x["ops"]]
        summary[f"b{b}"] = {**stats, "within_5pct": round(float(np.mean(np.abs(pred / y - 1) <= 0.05)), 3),
                            "mean_ratio": round(float(np.mean(pred / y)), 3),
                            "share_of_ops_timed": round(float(np.mean([x["ops_timed"] / x["ops"] for x in sel])), 3),
                            "all_ops_timed": len(full),
                            "all_ops_timed_mape_pct": round(float(np.mean(np.abs(pred[full] / y[full] - 1)) * 100), 2)
                            if full else None,
                            "yardstick_self_agreement_10pct": self_agree}
        s = summary[f"b{b}"]
        rows.append([f"{'fp32' if b == 32 else f'int{b}'}", len(sel), f"{s['within_10pct'] * 100:.0f}%",
                     f"{s['within_5pct'] * 100:.0f}%", s["mape_pct"], s["kendall_tau"], s["mean_ratio"],
                     f"{s['share_of_ops_timed'] * 100:.0f}%",
                     "n/a" if self_agree is None else f"{self_agree * 100:.0f}%"])
    print(table(["precision", "networks", "within ±10%", "within ±5%", "MAPE %", "tau", "pred/measured",
                 "ops timed", "yardstick self-agreement ±10%"], rows))
    out = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}, "export_s": round(t_export, 1),
           "wall_s": round(time.time() - t0, 1), "profile": {"ops": res.ops, "skipped": len(res.skipped),
                                                             "validation": res.validation},
           "summary": summary, "networks": nets}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
