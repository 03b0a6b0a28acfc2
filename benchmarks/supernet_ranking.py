"""Supernet ranking: do inherited-weight scores rank candidates as training each alone does?

    python benchmarks/supernet_ranking.py --data builtin --part target   # the slow part, cached
    python benchmarks/supernet_ranking.py --data builtin                 # everything else + report

20 mobilenetv3 candidates spread evenly over 0.3-1.0x the default latency budget (pixel7, the
budget of ``nas search --device pixel7``; seeded sampling, one per latency bin). The target:
each trained alone for TARGET_FACTOR x the short proxy's budget (same recipe), the mean of two
seeds (0, 1); the target's own agreement is Kendall tau between its two seeds. Scored against
it: the short proxy (seed 0, default budget) and the supernet (trained once with the search's
default supernet budget on the candidates within 1.5x the budget, then each candidate extracted,
batch-norm re-estimated, scored on the validation split). Kendall tau overall and within latency
bands (pairs within +-15% latency of each other). Training runs in worker processes, one torch
thread each. Results go to benchmarks/results/supernet_ranking_<data>[_tag].json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, portable  # noqa: E402

TARGET_FACTOR = 5
N = 20
BAND = 0.15
RESULTS = Path(__file__).resolve().parent / "results"


def pick_candidates(n: int = N, seed: int = 0, num_classes: int = 10, in_channels: int = 1):
    from nas.latency import load_device
    from nas.run import default_budget
    from nas.space import load_space

    space, profile = load_space("mobilenetv3"), load_device("pixel7")
    budget, _ = default_budget(profile, num_classes, in_channels)
    bins: dict[int, tuple[str, float]] = {}
    rng = random.Random(seed)
    for _ in range(20000):
        c = space.sample(rng)
        ratio = profile.latency_ms(c, num_classes=num_classes, in_channels=in_channels) / budget
        if 0.3 <= ratio < 1.0:
            bins.setdefault(int((ratio - 0.3) / 0.7 * n), (c.key, ratio))
        if len(bins) == n:
            break
    return [bins[i] for i in sorted(bins)], budget


def _train(args):
    key, data, seed, epochs = args
    import torch

    torch.set_num_threads(1)
    from nas.data import load_dataset
    from nas.train import evaluate_proxy

    r = evaluate_proxy(key, load_dataset(data), seed=seed, epochs=epochs)
    return {"key": key, "seed": seed, "epochs": epochs, "accuracy": r.accuracy, "seconds": r.seconds,
            "failed": r.failed}


def kendall(a, b) -> float:
    from nas.latency import kendall_tau

    return float(kendall_tau(a, b))


def band_tau(score, target, lat) -> tuple[float, int]:
    """Kendall tau over the pairs whose latencies are within BAND of each other."""
    conc = disc = 0
    for i, j in combinations(range(len(score)), 2):
        if abs(lat[i] - lat[j]) > BAND * max(lat[i], lat[j]):
            continue
        s, t = score[i] - score[j], target[i] - target[j]
        if s * t > 0:
            conc += 1
        elif s * t < 0:
            disc += 1
    n = conc + disc
    return ((conc - disc) / n if n else float("nan")), n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="builtin")
    ap.add_argument("--part", choices=["target", "proxy", "supernet", "all"], default="all")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--supernet-epochs", type=float, default=None)
    ap.add_argument("--from-run", default=None, help="score with the supernet a `nas search --proxy supernet` run "
                    "trained (the same default budget, seed and limit) instead of training one here")
    ap.add_argument("--tag", default="")
    ap.add_argument("--seeds", default="0,1", help="target seeds to run (another process may run the others)")
    ap.add_argument("--also", nargs="*", default=[], help="result files whose target runs are merged in")
    args = ap.parse_args()
    tag = Path(args.data).stem if args.data != "builtin" else "builtin"
    out = RESULTS / f"supernet_ranking_{tag}{'_' + args.tag if args.tag else ''}.json"
    base = RESULTS / f"supernet_ranking_{tag}.json"
    res = json.loads((out if out.exists() else base).read_text()) if (out.exists() or base.exists()) else {}
    from nas.data import load_dataset

    ds = load_dataset(args.data)  # the budget and the latencies for its classes and channels (CIFAR: 3)
    cands, budget = pick_candidates(num_classes=ds.num_classes, in_channels=ds.in_channels)
    keys = [k for k, _ in cands]
    res.update({"machine": machine(), "data": portable(args.data), "budget_ms": budget,
                "candidates": [{"key": k, "latency_ratio": r} for k, r in cands]})

    def save():
        RESULTS.mkdir(exist_ok=True)
        out.write_text(json.dumps(res, indent=1))

    def runs(name, jobs):
        done = {(r["key"], r["seed"]) for r in res.get(name, [])}
        todo = [j for j in jobs if (j[0], j[2]) not in done]
        with ProcessPoolExecutor(args.workers) as pool:
            for r in pool.map(_train, todo):
                res.setdefault(name, []).append(r)
                save()
                print(name, r, flush=True)

    for extra in args.also:  # target runs made by another process (another --seeds)
        have = {(r["key"], r["seed"]) for r in res.get("target", [])}
        res.setdefault("target", []).extend(r for r in json.loads(Path(extra).read_text()).get("target", [])
                                            if (r["key"], r["seed"]) not in have)
    if args.part in ("target", "all"):
        seeds = [int(x) for x in args.seeds.split(",")]
        runs("target", [(k, args.data, s, float(TARGET_FACTOR)) for s in seeds for k in keys])
    if args.part in ("proxy", "all"):
        runs("proxy", [(k, args.data, 0, 1.0) for k in keys])
    if args.part in ("supernet", "all"):
        res["supernet"] = supernet_scores(keys, args.data, args.supernet_epochs, budget, args.from_run)
        save()
    report(res, keys)
    save()


def supernet_scores(keys, data, epochs, budget_ms, from_run=None):
    import torch

    from nas.data import load_dataset
    from nas.latency import load_device
    from nas.space import load_space
    from nas.supernet import Supernet, SupernetBudget, score_candidate, train_supernet

    torch.set_num_threads(2)
    ds = load_dataset(data)
    space, profile = load_space("mobilenetv3"), load_device("pixel7")
    b = SupernetBudget() if epochs is None else SupernetBudget(epochs=epochs)

    def allow(c):
        return profile.latency_ms(c, num_classes=ds.num_classes, in_channels=ds.in_channels) <= b.member_limit * budget_ms

    t0 = time.perf_counter()
    if from_run:
        from nas.supernet import load_supernet, read_training

        net, rec = load_supernet(from_run, space), read_training(from_run)
        assert rec is not None and b.matches(rec["budget"]) and rec["seed"] == 0, "another supernet budget"
        steps, largest, train_s = rec["training"]["steps"], rec["training"]["largest"], rec["training"]["seconds"]
    else:
        net = Supernet(space, ds.num_classes, ds.in_channels)
        tr = train_supernet(net, ds, b, seed=0, allow=allow, threads=2)
        steps, largest, train_s = tr.steps, tr.largest, time.perf_counter() - t0
    scores, t1 = [], time.perf_counter()
    for k in keys:
        r = score_candidate(net, space.parse(k), ds, seed=0)
        scores.append({"key": k, "accuracy": r.accuracy, "seconds": r.seconds})
    return {"budget": b.__dict__, "train_seconds": train_s, "steps": steps, "largest": largest, "from_run": portable(str(from_run)) if from_run else None,
            "score_seconds_median": statistics.median(s["seconds"] for s in scores),
            "score_wall": time.perf_counter() - t1, "scores": scores}


def report(res, keys) -> None:
    lat = [c["latency_ratio"] for c in res["candidates"]]

    def acc(name, seed=None):
        by = {}
        for r in res.get(name, []):
            if seed is None or r["seed"] == seed:
                by.setdefault(r["key"], []).append(r["accuracy"])
        return [statistics.mean(by[k]) if k in by else None for k in keys]

    target = acc("target")
    t0, t1 = acc("target", 0), acc("target", 1)
    lines = []
    if None not in t0 and None not in t1:
        lines.append(f"target self-agreement (seed 0 vs 1): tau {kendall(t0, t1):.3f}, "
                     f"in bands {band_tau(t0, t1, lat)[0]:.3f}")
    rows = {"short proxy": acc("proxy")}
    if "supernet" in res:
        rows["supernet"] = [s["accuracy"] for s in res["supernet"]["scores"]]
    rows["predicted latency alone (slower = better)"] = list(lat)
    if None not in target:
        for name, sc in rows.items():
            if None in sc:
                continue
            bt, npairs = band_tau(sc, target, lat)
            lines.append(f"{name}: tau {kendall(sc, target):.3f} overall, {bt:.3f} within +-15% bands ({npairs} pairs)")
    res["summary"] = lines
    print("\n".join(lines))


if __name__ == "__main__":
    main()
