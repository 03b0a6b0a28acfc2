"""Issue 5 (a): hypervolume after N trials for TPE, NSGA-II and random search.

Each run is a real `run_search` (Optuna + Ray, 2 workers) on mobilenetv3 / pixel7 with the
budget derived from MobileNetV3-Small; the hypervolume (accuracy x budget-normalised latency,
reference point (0, budget), nas.report._report.hypervolume_2d) is taken over the first N counted
trials. Same proxy for every sampler: to fit the benchmark in the session the proxy is cut to
1,000 training images (1 epoch) instead of the default 4,000.

    python benchmarks/search_samplers.py [--trials 60] [--seeds 0 1 2] [--data builtin cifar]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, table  # noqa: E402

CIFAR = HERE.parent.parent / "shared" / "data" / "cifar10_subset_10k_2k.npz"


def hv_curve(study, budget_ms: float) -> list[float]:
    from nas.search import hypervolume_2d

    pts, curve = [], []
    for t in sorted(study.trials, key=lambda t: t.number):
        st = t.user_attrs.get("status")
        if st not in ("evaluated", "failed", "duplicate") or t.user_attrs.get("interrupted"):
            continue
        if st in ("evaluated", "duplicate") and t.user_attrs.get("accuracy") is not None:
            pts.append((t.user_attrs["accuracy"], t.user_attrs["latency_ms"]))
        curve.append(hypervolume_2d(pts, budget_ms))
    return curve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "random"])
    ap.add_argument("--data", nargs="+", default=["builtin", "cifar"])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--out", default=str(HERE / "results" / "search_samplers.json"))
    args = ap.parse_args()

    import optuna
    import ray

    from nas.api import run_search
    from nas.report import load_run
    from nas.run import SearchConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": []}
    results["machine"] = machine()
    done = {(r["data"], r["sampler"], r["seed"]) for r in results["runs"] if r["trials"] == args.trials}
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.data:
            path = "builtin" if data == "builtin" else str(CIFAR)
            for seed in args.seeds:
                for sampler in args.samplers:
                    if (data, sampler, seed) in done:
                        continue
                    cfg = SearchConfig(device="pixel7", space="mobilenetv3", trials=args.trials, workers=2,
                                       data=path, sampler=sampler, seed=seed, out=tmp,
                                       name=f"{data}-{sampler}-{seed}", references=0,
                                       proxy={"max_train_images": args.images}, proxy_kind="train")
                    t0 = time.perf_counter()
                    res = run_search(cfg)
                    study, meta, _ = load_run(res.run_dir)
                    curve = hv_curve(study, res.budget_ms)
                    row = {"data": data, "sampler": sampler, "seed": seed, "trials": args.trials,
                           "budget_ms": res.budget_ms, "hv": curve, "evaluated": res.evaluated,
                           "failed": res.failed, "over_budget": res.over_budget, "best": res.best_accuracy,
                           "wall_s": time.perf_counter() - t0,
                           "driver_ms": res.driver_ms}
                    results["runs"].append(row)
                    out.write_text(json.dumps(results, indent=1))
                    print(f"{data} {sampler} seed {seed}: HV@{args.trials} {curve[-1]:.4f} "
                          f"({res.over_budget} over budget, {row['wall_s']:.0f} s)", flush=True)
    ray.shutdown()
    summarize(results, args.trials)


def summarize(results: dict, n: int) -> None:
    import statistics

    rows = []
    for data in ("builtin", "cifar"):
        runs = [r for r in results["runs"] if r["data"] == data and r["trials"] == n]
        rnd = [r["hv"][-1] for r in runs if r["sampler"] == "random"]
        for sampler in ("tpe", "nsga2", "random"):
            hv = [r["hv"][-1] for r in runs if r["sampler"] == sampler]
            hv30 = [r["hv"][min(29, len(r["hv"]) - 1)] for r in runs if r["sampler"] == sampler]
            if not hv:
                continue
            ratio = statistics.mean(hv) / statistics.mean(rnd) if rnd else float("nan")
            rows.append([data, sampler, len(hv), f"{statistics.mean(hv30):.4f}", f"{statistics.mean(hv):.4f}",
                         " / ".join(f"{h:.4f}" for h in hv), f"{ratio:.3f}x",
                         f"{statistics.mean(r['over_budget'] for r in runs if r['sampler'] == sampler):.0f}"])
    print(table(["data", "sampler", "seeds", "HV@30", f"HV@{n} mean", "per seed", "vs random",
                 "over budget (mean)"], rows))


if __name__ == "__main__":
    main()
