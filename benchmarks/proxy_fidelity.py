"""Proxy fidelity: does the short proxy rank candidates like 10x longer training does?

    python benchmarks/proxy_fidelity.py --data ../shared/data/cifar10_subset_10k_2k.npz --n 20
    python benchmarks/proxy_fidelity.py --data builtin --n 20
    # a proxy variant against the long runs already measured (no long runs repeated):
    python benchmarks/proxy_fidelity.py --data builtin --n 20 --reuse-long --set lr=0.2 --tag lr0.2

For N random mobilenetv3 candidates (mixed bits and pruning; seed 0): validation accuracy
after the default proxy budget, and after LONG_FACTOR x that budget (same recipe, same seed);
Kendall tau between the two, and the proxy's cost. Tau is also given for ranking by the
proxy's validation loss instead of its accuracy. ``--set field=value`` changes the short
run's ProxyBudget (the long run always uses the defaults x LONG_FACTOR); ``--reuse-long``
takes the long runs from the untagged results file when its candidates match. Candidates run in parallel worker
processes, 1 torch thread each (--workers, default 2 on this 2-core machine), so per-candidate
seconds are those of one core. Per-candidate rows go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, portable, table  # noqa: E402

LONG_FACTOR = 10


def _run(args):
    key, data, factor, seed, overrides = args
    import torch

    torch.set_num_threads(1)
    from nas.data import load_dataset
    from nas.train import ProxyBudget, evaluate_proxy

    ds = load_dataset(data)
    b = ProxyBudget()
    if factor != 1:
        overrides = {"epochs": b.epochs * factor}
    r = evaluate_proxy(key, ds, seed=seed, **overrides)
    return r.to_dict()


def _zero_cost(keys, ok, data, short_acc, long_acc) -> dict:
    import numpy as np
    import torch
    from zerocost import naswot

    import nas
    from nas.data import load_dataset
    from nas.latency import kendall_tau
    from nas.train import proxy_resolution

    torch.set_num_threads(1)
    ds = load_dataset(data)
    scores, secs, macs = [], [], []
    for i in ok:
        t0 = time.perf_counter()
        scores.append(naswot(keys[i], ds, seed=0))
        secs.append(time.perf_counter() - t0)
        c = nas.parse_candidate(keys[i])
        side = proxy_resolution(c, ds.resolution)
        macs.append(sum(op.macs for op in c.ops(resolution=side, num_classes=ds.num_classes,
                                                  in_channels=ds.in_channels)))
    nw = np.array(scores)

    def ranks(v):
        return np.asarray(v).argsort(kind="stable").argsort().astype(float)
    tiebreak = short_acc + 1e-6 * ranks(nw) / len(nw)  # accuracies are multiples of 1e-3 or coarser
    return {"naswot": scores, "naswot_seconds": secs, "macs": macs,
            "naswot_median_seconds": statistics.median(secs),
            "tau_naswot": kendall_tau(nw, long_acc), "tau_macs": kendall_tau(np.array(macs, float), long_acc),
            "tau_acc_tiebreak_naswot": kendall_tau(tiebreak, long_acc),
            "tau_ranksum_naswot": kendall_tau(ranks(short_acc) + ranks(nw), long_acc)}


def _parse_set(items: list[str]) -> dict:
    from dataclasses import fields

    from nas.train import ProxyBudget

    types = {f.name: f.type for f in fields(ProxyBudget)}
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        if k not in types:
            raise SystemExit(f"--set: unknown ProxyBudget field {k!r}; known: {', '.join(types)}")
        out[k] = None if v == "None" else (float(v) if "." in v or "e" in v else int(v))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="builtin")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--space", default="mobilenetv3")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="seed of the candidate sample")
    ap.add_argument("--train-seed", type=int, default=0, help="seed of the short runs")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--tag", default="", help="suffix of the results file")
    ap.add_argument("--reuse-long", action="store_true")
    ap.add_argument("--long-factor", type=float, default=LONG_FACTOR)
    ap.add_argument("--long-seed", type=int, default=0,
                    help="seed of the long runs (another seed measures the target's own noise)")
    ap.add_argument("--zero-cost", action="store_true",
                    help="also score NASWOT (benchmarks/zerocost.py) and MACs alone, as tie-breaker and rank-sum")
    args = ap.parse_args()
    overrides = _parse_set(args.set)

    import nas
    from nas.latency import kendall_tau

    space = nas.load_space(args.space)
    rng = random.Random(args.seed)
    keys = [space.sample(rng).key for _ in range(args.n)]
    name = Path(args.data).stem if args.data != "builtin" else "builtin"
    results = Path(__file__).parent / "results"
    long = None
    if args.reuse_long and args.long_seed != 0:
        raise SystemExit("--reuse-long takes the seed-0 long runs: leave --long-seed out")
    if args.reuse_long:
        base = results / f"proxy_fidelity_{name}.json"
        prev = json.loads(base.read_text()) if base.exists() else {}
        if prev.get("keys") != keys:
            raise SystemExit(f"--reuse-long: {base.name} does not hold these {args.n} candidates")
        long = prev["long"]
    t0 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        short = list(pool.map(_run, [(k, args.data, 1, args.train_seed, overrides) for k in keys]))
        print(f"proxy done at {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
        if long is None:
            long = list(pool.map(_run, [(k, args.data, args.long_factor, args.long_seed, {}) for k in keys]))
    ok = [i for i in range(len(keys)) if not short[i]["failed"] and not long[i]["failed"]]
    import numpy as np

    sa = np.array([short[i]["accuracy"] for i in ok])
    la = np.array([long[i]["accuracy"] for i in ok])
    tau = kendall_tau(sa, la)
    rho = float(np.corrcoef(sa.argsort().argsort(), la.argsort().argsort())[0, 1])
    sl = np.array([-short[i].get("val_loss", float("nan")) for i in ok])
    tau_loss = kendall_tau(sl, la) if np.isfinite(sl).all() else float("nan")
    costs = [short[i]["seconds"] for i in ok]
    extra = {}
    if args.zero_cost:
        extra = _zero_cost(keys, ok, args.data, sa, la)
    out = results / f"proxy_fidelity_{name}{'_' + args.tag if args.tag else ''}.json"
    out.write_text(json.dumps({"machine": machine(), "data": portable(args.data), "overrides": overrides,
                               "train_seed": args.train_seed, "long_seed": args.long_seed, "keys": keys, "short": short, "long": long,
                               "tau": tau, "tau_val_loss": tau_loss, "rho": rho,
                               "median_seconds": statistics.median(costs), **extra}, indent=1))
    print(f"Measured on: {machine()}; data {portable(args.data)}; short-run overrides {overrides or 'none'}; "
          f"{len(ok)} of {len(keys)} candidates finished both runs; wall {time.time() - t0:.0f}s with "
          f"{args.workers} workers{' (long runs reused)' if args.reuse_long else ''}\n")
    print(f"Kendall tau (proxy vs {args.long_factor:g}x budget): {tau:.3f} (Spearman rho {rho:.3f}; ranking by "
          f"validation loss instead: tau {tau_loss:.3f}); median proxy cost "
          f"{statistics.median(costs):.1f} s per candidate (one core)\n")
    if extra:
        print(f"Zero-cost (one core): NASWOT alone tau {extra['tau_naswot']:.3f} (median "
              f"{extra['naswot_median_seconds']:.2f} s); MACs alone tau {extra['tau_macs']:.3f}; proxy accuracy "
              f"with NASWOT as tie-breaker {extra['tau_acc_tiebreak_naswot']:.3f}; rank sum of proxy accuracy and "
              f"NASWOT {extra['tau_ranksum_naswot']:.3f}\n")
    rows = []
    for i in range(len(keys)):
        s, l = short[i], long[i]
        rows.append([i, f"`{keys[i]}`", f"{s['accuracy'] * 100:.1f}", f"{s['seconds']:.1f}",
                     f"{s['images_per_second']:.0f}", f"{l['accuracy'] * 100:.1f}", f"{l['seconds']:.0f}",
                     s["reason"] or l["reason"]])
    print(table(["#", "candidate", "proxy acc %", "proxy s", "img/s", f"{args.long_factor:g}x acc %",
                 f"{args.long_factor:g}x s", "failure"], rows))


if __name__ == "__main__":
    main()
