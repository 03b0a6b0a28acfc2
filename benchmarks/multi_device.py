"""Issue 27: one search for three devices against three single-device searches.

Per seed: one `run_search` with `--device pixel7,pixel1,note10` (for each `--steer` arm: one
constraint per device on latency/budget, or one latency/budget objective per device), and one
single-device `run_search` per device at the same budget and the same trial count. It reports:
the total wall time of the shared run against the three single runs (goal: at most 1.3x one
run, against 3x), each device's hypervolume from the shared run against its own run (goal: at
least 0.95x; accuracy x budget-normalised latency, `nas.search.hypervolume_2d` over the trained
trials within that device's budget) and whether each device's winner (the trial `nas distill
--device D` picks, `--pick best`) is within its device's budget. No winner is trained (that
costs the same on both sides); every run has references 0 and the same proxy.

    python benchmarks/multi_device.py [--trials 40] [--seeds 0 1 2] [--steer constraints objectives]

A tiny end-to-end check (minutes): `--trials 3 --seeds 0 --images 128 --out multi_device_tiny.json` (a file in the
current folder, so the recorded results stay as they are).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, table  # noqa: E402

DEVICES = ("pixel7", "pixel1", "note10")


def device_facts(run_dir: Path, device: str | None, budget_ms: float) -> dict:
    """Hypervolume of a run's trained trials on ``device`` (None: a one-device run) at ``budget_ms``
    and its default pick's predicted latency there."""
    from nas.report import load_run
    from nas.search import best_trial, hypervolume_2d, read_trials, rows_for_device

    study, _, _ = load_run(run_dir)
    rows = rows_for_device(read_trials(study), device)
    pts = [(r.accuracy, r.latency_ms) for r in rows if r.trained and r.latency_ms is not None]
    win = best_trial(rows, budget_ms)
    return {"hv": hypervolume_2d(pts, budget_ms), "budget_ms": budget_ms,
            "winner_trial": None if win is None else win.number,
            "winner_accuracy": None if win is None else win.accuracy,
            "winner_latency_ms": None if win is None else win.latency_ms,
            "winner_within_budget": win is not None and win.latency_ms <= budget_ms,
            "trained": sum(1 for r in rows if r.trained), "within_budget": len([p for p in pts if p[1] <= budget_ms])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steer", nargs="+", default=["constraints", "objectives"], choices=["constraints", "objectives"])
    ap.add_argument("--data", default="builtin", help="builtin, cifar10 or a path")
    ap.add_argument("--images", type=int, default=None, help="proxy training images per epoch (default: the "
                                                             "proxy's default)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "multi_device.json"))
    args = ap.parse_args()

    import optuna
    import ray

    from nas.api import run_search
    from nas.run import SearchConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ray.init(num_cpus=args.workers, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": []}
    results["machine"] = machine()
    proxy = {} if args.images is None else {"max_train_images": args.images}
    done = {(r["arm"], r["seed"]) for r in results["runs"] if r["trials"] == args.trials and r["data"] == args.data}

    def record(row: dict) -> None:
        results["runs"].append(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))

    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            base = dict(space="mobilenetv3", trials=args.trials, workers=args.workers, data=args.data, seed=seed,
                        out=tmp, references=0, proxy=proxy, proxy_kind="train")
            budgets: dict[str, float] = {}
            for steer in args.steer:
                arm = f"shared-{steer}"
                if (arm, seed) in done:
                    budgets = budgets or next(r["budgets"] for r in results["runs"] if r["arm"] == arm)
                    continue
                t0 = time.perf_counter()
                res = run_search(SearchConfig(device=",".join(DEVICES), steer=steer, name=f"{arm}-{seed}", **base))
                wall = time.perf_counter() - t0
                budgets = {t.name: t.budget_ms for t in res.context.devices}
                per = {d: device_facts(res.run_dir, d, budgets[d]) for d in DEVICES}
                record({"arm": arm, "seed": seed, "trials": args.trials, "data": args.data, "wall_s": wall,
                        "budgets": budgets, "devices": per, "over_budget": res.over_budget})
                print(f"seed {seed} {arm}: {wall:.0f} s, " + ", ".join(f"{d} HV {per[d]['hv']:.4f}" for d in DEVICES),
                      flush=True)
            for d in DEVICES:
                arm = f"single-{d}"
                if (arm, seed) in done:
                    continue
                t0 = time.perf_counter()
                res = run_search(SearchConfig(device=d, latency_ms=budgets.get(d), name=f"{arm}-{seed}", **base))
                wall = time.perf_counter() - t0
                facts = device_facts(res.run_dir, None, res.budget_ms)
                record({"arm": arm, "seed": seed, "trials": args.trials, "data": args.data, "wall_s": wall,
                        "budgets": {d: res.budget_ms}, "devices": {d: facts}, "over_budget": res.over_budget})
                print(f"seed {seed} {arm}: {wall:.0f} s, HV {facts['hv']:.4f}", flush=True)
    ray.shutdown()
    summarize(results, args.trials, args.data)


def summarize(results: dict, n: int, data: str) -> None:
    runs = [r for r in results["runs"] if r["trials"] == n and r["data"] == data]
    seeds = sorted({r["seed"] for r in runs})

    def run(arm: str, seed: int) -> dict | None:
        return next((r for r in runs if r["arm"] == arm and r["seed"] == seed), None)

    rows = []
    for steer in ("constraints", "objectives"):
        arm = f"shared-{steer}"
        for seed in seeds:
            shared = run(arm, seed)
            singles = [run(f"single-{d}", seed) for d in DEVICES]
            if shared is None or None in singles:
                continue
            one = statistics.mean(s["wall_s"] for s in singles)
            row = [steer, seed, f"{shared['wall_s']:.0f} s", f"{sum(s['wall_s'] for s in singles):.0f} s",
                   f"{shared['wall_s'] / one:.2f}x"]
            for d, s in zip(DEVICES, singles):
                hs, ho = shared["devices"][d]["hv"], s["devices"][d]["hv"]
                ok = "yes" if shared["devices"][d]["winner_within_budget"] else "NO"
                row.append(f"{hs:.4f} / {ho:.4f} = {hs / ho if ho else float('nan'):.2f}x, winner within: {ok}")
            rows.append(row)
    print(table(["steer", "seed", "shared wall", "3 single walls", "shared / one single",
                 *[f"{d}: HV shared / own run" for d in DEVICES]], rows))


if __name__ == "__main__":
    main()
