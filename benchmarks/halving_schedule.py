"""Issue 14: does continuing a rung from its checkpoint (weights + SGD momentum, warm restart)
reach what training the longer budget from scratch reaches?

For N random mobilenetv3 candidates (seed 0): validation accuracy after E epochs from scratch,
and after 1 epoch then E-1 more epochs continued from the 1-epoch checkpoint (fresh warm-up of
``--warmup`` of the segment, then cosine; peak learning rate ``--lr`` times the proxy's).
Candidates run in parallel worker processes, 1 torch thread each.

    python benchmarks/halving_schedule.py --data builtin --n 6 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, table  # noqa: E402


def _one(args):
    key, data, epochs, warmups, lrs = args
    import torch

    torch.set_num_threads(1)
    from nas.data import load_dataset
    from nas.train import ProxyBudget, evaluate_proxy

    ds = load_dataset(data)
    b = ProxyBudget()
    out = {"key": key}
    r = evaluate_proxy(key, ds, seed=0, epochs=b.epochs * epochs)
    out["scratch"], out["scratch_s"] = r.accuracy, r.seconds
    r0 = evaluate_proxy(key, ds, seed=0, keep_state=True)
    out["rung0"], out["rung0_s"] = r0.accuracy, r0.seconds
    for w in warmups:
        for lr in lrs:
            r1 = evaluate_proxy(key, ds, seed=1000, start=r0.state, epochs=b.epochs * (epochs - 1),
                                warmup_fraction=w, lr=b.lr * lr)
            out[f"cont_w{w}_lr{lr}"] = r1.accuracy
            out[f"cont_w{w}_lr{lr}_s"] = r1.seconds
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="builtin")
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--warmups", type=float, nargs="+", default=[0.1])
    ap.add_argument("--lrs", type=float, nargs="+", default=[1.0, 0.5])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    import nas

    space = nas.load_space("mobilenetv3")
    keys = [c.key for c in space.sample_many(args.n, seed=0)]
    with ProcessPoolExecutor(args.workers) as ex:
        rows = list(ex.map(_one, [(k, args.data, args.epochs, args.warmups, args.lrs) for k in keys]))
    arms = [k for k in rows[0] if k.startswith("cont_") and not k.endswith("_s")]
    print(f"{machine()}; data {args.data}; {args.n} candidates; {args.epochs:g} epochs\n")
    body = [["from scratch", f"{statistics.mean(r['scratch'] for r in rows):.4f}", "-",
             f"{statistics.median(r['scratch_s'] for r in rows):.1f}"]]
    for a in arms:
        d = [r[a] - r["scratch"] for r in rows]
        body.append([a, f"{statistics.mean(r[a] for r in rows):.4f}", f"{statistics.mean(d):+.4f}",
                     f"{statistics.median(r['rung0_s'] + r[a + '_s'] for r in rows):.1f}"])
    body.append(["1 epoch only (rung 0)", f"{statistics.mean(r['rung0'] for r in rows):.4f}", "-",
                 f"{statistics.median(r['rung0_s'] for r in rows):.1f}"])
    print(table(["arm", "mean val accuracy", "vs scratch (mean)", "median s"], body))
    out = HERE / "results" / f"halving_schedule_{Path(args.data).stem}.json"
    out.write_text(json.dumps({"machine": machine(), "args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
