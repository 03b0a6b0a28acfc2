"""Onboarding fidelity of `nas profile fit` on real phone timings.

    python benchmarks/profile_fit.py [--out benchmarks/results/profile_fit.json]

Data: ../shared/device_data/help_fbnet_cifar100_pixel2_a50.csv (HELP authors: 5,000 FBNet
networks, 32 px, 100 classes, timed end to end on a Pixel 2 and a Galaxy A50; whole ms).
Fixed split: a seed-0 permutation; the first 1,000 networks are the test set, the fit uses the
first N of the remaining 4,000 (N in 10, 50, 200, 1000). Every arm sees the same networks.

Arms:
- `nas profile fit`: the real command path (CSV written with quoted keys, `fit_measurements`,
  the profile written and loaded with `load_device`, test networks priced by
  `DeviceProfile.latency_ms(candidate, num_classes=100)`, exactly as a search prices them);
- baseline "MACs-linear": ms = a * MACs + b, least squares on relative error;
- baseline "per-(layer, op) table": one additive term per distinct operator plus an offset,
  least squares on relative error with a tiny ridge (1e-3) so unseen operators get 0;
- "before": the fit as it was before issue 13 (five global coefficients, ridge toward the prior,
  features built for 1000 classes while the search prices 100).
Metrics on the 1,000 test networks: MAPE, share within ±10%, Kendall tau (tau-b).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

from nas.latency import (
    Estimator,
    error_stats,
    fit_measurements,
    load_device,  # noqa: E402
    op_features,
)
from nas.space import parse_candidate

DATA = Path(__file__).resolve().parents[2] / "shared" / "device_data" / "help_fbnet_cifar100_pixel2_a50.csv"
PHONES = {"pixel2": "pixel2_ms", "a50": "samsung_a50_ms"}
SIZES = (10, 50, 200, 1000)


def relative_lstsq(A: np.ndarray, y: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    W, b = A / y[:, None], np.ones(len(y))
    if ridge:
        W = np.vstack([W, np.sqrt(ridge) * np.eye(A.shape[1])])
        b = np.concatenate([b, np.zeros(A.shape[1])])
    return np.linalg.lstsq(W, b, rcond=None)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/profile_fit.json"))
    ap.add_argument("--prior", default="pixel7")
    args = ap.parse_args()
    print(f"Measured on: {machine()}\n")
    rows = list(csv.DictReader(DATA.open(newline="")))
    cands = [parse_candidate(r["key"]) for r in rows]
    ops = [c.ops(num_classes=100) for c in cands]
    keys = sorted({op.key for net in ops for op in net})
    kidx = {k: i for i, k in enumerate(keys)}
    C = np.zeros((len(ops), len(keys) + 1))
    C[:, -1] = 1
    for i, net in enumerate(ops):
        for op in net:
            C[i, kidx[op.key]] += 1
    macs = np.array([[sum(op.macs for op in net) / 1e6, 1.0] for net in ops])
    prior = load_device(args.prior)
    # the old fit built features for 1000 classes; the search priced with the data's 100
    old_X = np.array([sum(op_features(op, prior.exec_bits(op.bits)) for op in c.ops()) for c in cands])
    X100 = np.array([sum(op_features(op, prior.exec_bits(op.bits)) for op in net) for net in ops])
    perm = np.random.default_rng(0).permutation(len(rows))
    test, pool = perm[:1000], perm[1000:]
    results, table_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for phone, col in PHONES.items():
            y = np.array([float(r[col]) for r in rows])
            for n in SIZES:
                train = pool[:n]
                csv_path = Path(tmp) / f"{phone}_{n}.csv"
                with csv_path.open("w", newline="") as f:
                    w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
                    w.writerow(["key", "classes", "ms"])
                    for i in train:
                        w.writerow([rows[i]["key"], rows[i]["classes"], rows[i][col]])
                t0 = time.perf_counter()
                path, fit = fit_measurements(f"{phone}-{n}", csv_path, Path(tmp) / "profiles", prior,
                                             runtime="tflite", force=True)
                fit_s = time.perf_counter() - t0
                prof = load_device(path)
                arms = {
                    "nas profile fit": np.array([prof.latency_ms(cands[i], num_classes=100) for i in test]),
                    "MACs-linear": macs[test] @ relative_lstsq(macs[train], y[train]),
                    "per-(layer, op) table": C[test] @ relative_lstsq(C[train], y[train], 1e-3),
                    "before (5 global terms, 1000-class features)":
                        Estimator.fit(old_X[train], y[train], prior=prior.estimator, ridge=0.05)
                        .predict_rows(X100[test]),
                }
                for arm, pred in arms.items():
                    s = error_stats(pred, y[test])
                    extra = {"chosen": f"{fit.level}, {fit.loss}", "cv": fit.cv, "fit_s": round(fit_s, 2)} if arm == "nas profile fit" else {}
                    results.append({"phone": phone, "n": n, "arm": arm, **s, **extra})
                    table_rows.append([phone, n, arm + (f" ({fit.level}, {fit.loss})" if extra else ""),
                                       f"{s['mape_pct']:.1f}%", f"{s['within_10pct'] * 100:.0f}%",
                                       f"{s['kendall_tau']:.3f}",
                                       f"{fit.cv['mape_pct']:.1f}% / {fit.cv['within_10pct'] * 100:.0f}%"
                                       if extra else ""])
    print(table(["phone", "N fitted", "model", "test MAPE", "within ±10%", "Kendall tau",
                 "fit's own CV (MAPE / within ±10%)"], table_rows))
    # How far can an additive model go on each phone? The per-(layer, op) table fitted on all
    # 4,000 pool networks, scored on the test set and on its own training networks; and for the
    # residuals, the share of networks timed >= 6% below the fit ("low mode") and how well a linear
    # classifier on the (layer, op) choices predicts it (against always guessing the majority).
    ceiling = []
    for phone, col in PHONES.items():
        y = np.array([float(r[col]) for r in rows])
        coef = relative_lstsq(C[pool], y[pool], 1e-3)
        test_s, train_s = error_stats(C[test] @ coef, y[test]), error_stats(C[pool] @ coef, y[pool])
        low = (C @ coef / y - 1) > 0.06  # the fit is >= 6% above the timing
        w = np.linalg.lstsq(C[pool], low[pool].astype(float), rcond=None)[0]
        acc = float(np.mean(((C[test] @ w) > 0.5) == low[test]))
        base = float(max(low[test].mean(), 1 - low[test].mean()))
        ceiling.append({"phone": phone, "test": test_s, "train": train_s, "low_share": float(low.mean()),
                        "low_predicted": acc, "low_majority": base})
    print("\nCeiling of additive models (per-(layer, op) table fitted on all 4,000 pool networks):")
    print(table(["phone", "test within ±10% / tau", "on its own training networks", "networks >= 6% below the fit",
                 "predictable from the architecture?"],
                [[c["phone"], f"{c['test']['within_10pct'] * 100:.0f}% / {c['test']['kendall_tau']:.3f}",
                  f"{c['train']['within_10pct'] * 100:.0f}% / {c['train']['kendall_tau']:.3f}",
                  f"{c['low_share'] * 100:.0f}%", f"{c['low_predicted'] * 100:.0f}% correct vs "
                  f"{c['low_majority'] * 100:.0f}% by always guessing the majority"] for c in ceiling]))
    results.append({"ceiling": ceiling})
    # Each level and loss on its own (no cross-validated choice), N = 50, test set
    from nas.latency import _fit as F

    nets = [[(op, prior.exec_bits(op.bits)) for op in net] for net in ops]
    prior_ms = np.array([prior.latency_ms(c, num_classes=100) for c in cands])
    ablation = []
    for phone, col in PHONES.items():
        y = np.array([float(r[col]) for r in rows])
        d = F._Design(nets, prior.estimator, prior_ms)
        for cfg in (("scale", 0.0, 0.0, "l2"), ("kinds", 0.01, 0.0, "l2"), ("ops", 0.01, 0.1, "l2"),
                    ("kinds", 0.01, 0.0, "l1"), ("ops", 0.01, 0.1, "l1")):
            st = error_stats(F._predict(d, test, F._solve(d, pool[:50], y, *cfg)), y[test])
            ablation.append({"phone": phone, "config": cfg, **st})
    print("\nEach level alone, fitted on N = 50 (ridge on kinds 0.01, on per-op terms 0.1):")
    print(table(["phone", "level", "loss", "within ±10%", "Kendall tau", "MAPE"],
                [[a["phone"], a["config"][0], a["config"][3], f"{a['within_10pct'] * 100:.0f}%",
                  f"{a['kendall_tau']:.3f}", f"{a['mape_pct']:.1f}%"] for a in ablation]))
    results.append({"ablation_n50": ablation})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "prior": args.prior, "results": results}, indent=1))


if __name__ == "__main__":
    main()
