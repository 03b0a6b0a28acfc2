"""Summarise the proxy-fidelity runs of one dataset: every variant against the long runs, and
the noise of the proxy and of the target themselves.

Reads benchmarks/results/proxy_fidelity_<name>[_<tag>].json as written by proxy_fidelity.py
(the untagged file holds the seed-0 long runs the variants were compared against; a
``longseed1`` file holds long runs with another seed; a ``seed1`` file short runs with
another seed; a ``zc`` file the zero-cost scores).

    python benchmarks/proxy_variants.py cifar10_subset_10k_2k
    python benchmarks/proxy_variants.py builtin
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _acc(rows):
    return np.array([r["accuracy"] for r in rows])


def _loss(rows):
    return -np.array([r["val_loss"] for r in rows])


def main() -> None:
    from nas.latency import kendall_tau as tau

    name = sys.argv[1] if len(sys.argv) > 1 else "cifar10_subset_10k_2k"
    base = json.loads((RESULTS / f"proxy_fidelity_{name}.json").read_text())
    long = _acc(base["long"])
    rows = []
    files = sorted(RESULTS.glob(f"proxy_fidelity_{name}_*.json"))
    for f in [RESULTS / f"proxy_fidelity_{name}.json"] + files:
        d = json.loads(f.read_text())
        tag = f.stem[len(f"proxy_fidelity_{name}"):].lstrip("_") or "default"
        if d.get("long_seed", 0) != 0 or d["keys"] != base["keys"]:
            continue
        what = ", ".join(f"{k}={v}" for k, v in d.get("overrides", {}).items()) or "defaults"
        if d.get("train_seed", 0):
            what += f", training seed {d['train_seed']}"
        s = d["short"]
        rows.append([tag, what, f"{tau(_acc(s), long):.3f}", f"{tau(_loss(s), long):.3f}",
                     f"{np.median([r['seconds'] for r in s]):.1f}"])
        if "naswot" in d:
            nw = np.array(d["naswot"])
            r = lambda v: np.asarray(v).argsort(kind="stable").argsort()  # noqa: E731
            rows.append(["zero-cost", "NASWOT at init, no training", f"{tau(nw, long):.3f}", "",
                         f"{np.median(d['naswot_seconds']):.2f}"])
            rows.append(["zero-cost", "MACs at the proxy side", f"{tau(np.array(d['macs'], float), long):.3f}", "",
                         "0"])
            rows.append([f"combined ({tag})", "rank of NASWOT + rank of the run's proxy score",
                         f"{tau(r(nw) + r(_acc(s)), long):.3f}", f"{tau(r(nw) + r(_loss(s)), long):.3f}", ""])
    print(table(["run", "short-run budget", "tau, by proxy accuracy", "tau, by proxy val. loss",
                 "median s"], rows))
    print()
    noise = []
    seed1 = RESULTS / f"proxy_fidelity_{name}_seed1.json"
    if seed1.exists():
        s0, s1 = base["short"], json.loads(seed1.read_text())["short"]
        noise.append(["proxy, training seed 0 vs 1", f"{tau(_acc(s0), _acc(s1)):.3f}",
                      f"{tau(_loss(s0), _loss(s1)):.3f}"])
    ls1 = RESULTS / f"proxy_fidelity_{name}_longseed1.json"
    if ls1.exists():
        l1 = json.loads(ls1.read_text())["long"]
        noise.append(["10x target, training seed 0 vs 1", f"{tau(long, _acc(l1)):.3f}",
                      f"{tau(_loss(base['long']), _loss(l1)):.3f}"])
        noise.append(["default proxy vs the mean of both 10x seeds",
                      f"{tau(_acc(base['short']), long + _acc(l1)):.3f}",
                      f"{tau(_loss(base['short']), long + _acc(l1)):.3f}"])
    if noise:
        print(table(["agreement (Kendall tau)", "accuracy", "val. loss"], noise))
    print(f"\n10x accuracies: {long.min() * 100:.1f}-{long.max() * 100:.1f}%, interquartile "
          f"{np.percentile(long, 25) * 100:.1f}-{np.percentile(long, 75) * 100:.1f}%")


if __name__ == "__main__":
    main()
