"""Proxy fidelity: does the short proxy rank candidates like 10x longer training does?

    python benchmarks/proxy_fidelity.py --data ../shared/data/cifar10_subset_10k_2k.npz --n 20
    python benchmarks/proxy_fidelity.py --data builtin --n 20

For N random mobilenetv3 candidates (mixed bits and pruning; seed 0): validation accuracy
after the default proxy budget, and after LONG_FACTOR x that budget (same recipe, same seed);
Kendall tau between the two, and the proxy's cost. Candidates run in parallel worker
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
from _common import machine, table  # noqa: E402

LONG_FACTOR = 10


def _run(args):
    key, data, factor, seed = args
    import torch

    torch.set_num_threads(1)
    from nas.data import load_dataset
    from nas.proxy import ProxyBudget, evaluate_proxy

    ds = load_dataset(data)
    b = ProxyBudget()
    r = evaluate_proxy(key, ds, seed=seed, epochs=b.epochs * factor)
    return r.to_dict()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="builtin")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--space", default="mobilenetv3")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import nas
    from nas.latency.validate import kendall_tau

    space = nas.load_space(args.space)
    rng = random.Random(args.seed)
    keys = [space.sample(rng).key for _ in range(args.n)]
    t0 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        short = list(pool.map(_run, [(k, args.data, 1, 0) for k in keys]))
        print(f"proxy done at {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
        long = list(pool.map(_run, [(k, args.data, LONG_FACTOR, 0) for k in keys]))
    ok = [i for i in range(len(keys)) if not short[i]["failed"] and not long[i]["failed"]]
    import numpy as np

    sa = np.array([short[i]["accuracy"] for i in ok])
    la = np.array([long[i]["accuracy"] for i in ok])
    tau = kendall_tau(sa, la)
    rho = float(np.corrcoef(sa.argsort().argsort(), la.argsort().argsort())[0, 1])
    costs = [short[i]["seconds"] for i in ok]
    name = Path(args.data).stem if args.data != "builtin" else "builtin"
    out = Path(__file__).parent / "results" / f"proxy_fidelity_{name}.json"
    out.write_text(json.dumps({"machine": machine(), "keys": keys, "short": short, "long": long}, indent=1))
    print(f"Measured on: {machine()}; data {args.data}; {len(ok)} of {len(keys)} candidates "
          f"finished both runs; wall {time.time() - t0:.0f}s with {args.workers} workers\n")
    print(f"Kendall tau (proxy vs {LONG_FACTOR}x budget): {tau:.3f} (Spearman rho {rho:.3f}); median proxy cost "
          f"{statistics.median(costs):.1f} s per candidate (one core)\n")
    rows = []
    for i in range(len(keys)):
        s, l = short[i], long[i]
        rows.append([i, f"`{keys[i]}`", f"{s['accuracy'] * 100:.1f}", f"{s['seconds']:.1f}",
                     f"{s['images_per_second']:.0f}", f"{l['accuracy'] * 100:.1f}", f"{l['seconds']:.0f}",
                     s["reason"] or l["reason"]])
    print(table(["#", "candidate", "proxy acc %", "proxy s", "img/s", f"{LONG_FACTOR}x acc %",
                 f"{LONG_FACTOR}x s", "failure"], rows))


if __name__ == "__main__":
    main()
