"""pixel7's expected error (issue 28, item 6): the hardware-facts rules that derive the pixel7
profile (Cortex-X1) applied to the big cores of older Pixels, checked against their published
whole-model CPU latencies (../shared/device_data/pixel_published_cpu.csv), with a
leave-one-phone-out fit of the rules' free factors.

    python benchmarks/pixel_cross_phone.py [--out benchmarks/results/pixel_cross_phone.json]

The rules (device_profiles/pixel7.yaml, ``estimator.from_hardware``): per-core peak = clock x
MACs per cycle (from the core's NEON/FP pipes, SDOT for int8); time = dense MACs / (peak x
dense_eff) + depthwise MACs / (peak x dw_eff) + bytes / bandwidth + layers x overhead, with
pixel7's efficiencies, bandwidth and overhead. Only the peak changes from core to core. Free
factors fitted across phones: one overall scale, or one scale on the dense and one on the
depthwise term (a core family's efficiency relative to the carried-over one).

Like with like: only XNNPACK single-thread fp32 rows of networks the spaces express (MobileNetV2
1.0/224, MobileNetV3 Large/Small 1.0/224) are fitted and checked. Every other row is listed with
why it was left out. Nothing is timed here.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

import nas  # noqa: E402
from nas.latency import Estimator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "device_data" / "pixel_published_cpu.csv"

# Public facts of each phone's big core. fp32 MACs per cycle from the core's NEON/FP pipes
# (an FMA is one MAC per fp32 lane): Cortex-A73 and A75 two 64-bit pipes (4), A76 two 128-bit
# pipes (8, Arm doubled the A75's ASIMD bandwidth), X1 four 128-bit pipes (16). int8: SDOT
# (Armv8.2 dot product, A75 onward) gives 4 int8 MACs per fp32 lane; the A73 and the Pixel 1's
# Kryo (Armv8.0) have no SDOT: 8-bit widening multiply-accumulate, taken as 2 per fp32 lane.
# The Pixel 1's Kryo is Qualcomm's own design: its pipe width is not published as Arm's are,
# and 4 fp32 MACs per cycle (the A73/A75 class) is an ASSUMPTION, marked as such below.
CORES: dict[str, dict] = {
    "Pixel 1": {"soc": "Snapdragon 821", "core": "Kryo (Qualcomm design)", "ghz": 2.15, "fp32_mac": 4,
                "int8_mac": 8, "assumed": True},
    "Pixel 2": {"soc": "Snapdragon 835", "core": "Kryo 280 Gold (Cortex-A73)", "ghz": 2.45, "fp32_mac": 4,
                "int8_mac": 8, "assumed": False},
    "Pixel 3a": {"soc": "Snapdragon 670", "core": "Kryo 360 Gold (Cortex-A75)", "ghz": 2.0, "fp32_mac": 4,
                 "int8_mac": 16, "assumed": False},
    "Pixel 3": {"soc": "Snapdragon 845", "core": "Kryo 385 Gold (Cortex-A75)", "ghz": 2.8, "fp32_mac": 4,
                "int8_mac": 16, "assumed": False},
    "Pixel 4": {"soc": "Snapdragon 855", "core": "Kryo 485 Gold prime (Cortex-A76)", "ghz": 2.84, "fp32_mac": 8,
                "int8_mac": 32, "assumed": False},
    "Pixel 7": {"soc": "Tensor G2", "core": "Cortex-X1", "ghz": 2.85, "fp32_mac": 16, "int8_mac": 64,
                "assumed": False},
}
PHONE_OF = {"Pixel": "Pixel 1", "Pixel (1)": "Pixel 1"}  # the CSV's spelling -> ours

# published model name (lower case, prefix) -> (space, reference)
NETWORKS = {"mobilenet v2 1.0x": ("mobilenetv2", "mobilenet_v2_1.0_224"),
            "mobilenet v3 large": ("mobilenetv3", "mobilenet_v3_large_1.0_224"),
            "mobilenet v3 small": ("mobilenetv3", "mobilenet_v3_small_1.0_224"),
            "mobilenet_v2_1.0_224_quant": ("mobilenetv2", "mobilenet_v2_1.0_224")}
EFFNET = {f"efficientnet-lite{i}": ("efficientnet_lite", f"efficientnet_lite{i}_{r}")
          for i, r in enumerate((224, 240, 260, 280, 300))}


def pixel7_rules() -> dict[str, float]:
    """The hardware-facts parameters pixel7 is derived with (its YAML's from_hardware block)."""
    raw = yaml.safe_load((ROOT / "device_profiles" / "pixel7.yaml").read_text())
    return dict(raw["estimator"]["from_hardware"])


def core_estimator(phone: str, rules: dict[str, float], dense_scale: float = 1.0,
                   dw_scale: float = 1.0) -> Estimator:
    """pixel7's rules on ``phone``'s big core; the scales multiply the dense / depthwise time."""
    c = CORES[phone]
    keep = {k: v for k, v in rules.items() if k not in ("fp32_macs_per_s", "int8_macs_per_s")}
    for k in ("dense_eff", "int8_dense_eff"):
        keep[k] = rules[k] / dense_scale
    for k in ("dw_eff", "int8_dw_eff"):
        keep[k] = rules[k] / dw_scale
    return Estimator.from_hardware(fp32_macs_per_s=c["ghz"] * 1e9 * c["fp32_mac"],
                                   int8_macs_per_s=c["ghz"] * 1e9 * c["int8_mac"], **keep)


def terms(candidate, est: Estimator) -> np.ndarray:
    """(dense, depthwise, rest) milliseconds of ``candidate`` under ``est`` (features summed
    over its ops at their own bits)."""
    from nas.latency import FEATURES, op_features

    x = sum(op_features(op) for op in candidate.ops())
    v = est.vector()
    dense = [i for i, f in enumerate(FEATURES) if f.endswith(".dense")]
    dw = [i for i, f in enumerate(FEATURES) if f.endswith(".dw")]
    rest = [i for i in range(len(FEATURES)) if i not in dense + dw]
    return np.array([x[dense] @ v[dense], x[dw] @ v[dw], x[rest] @ v[rest]])


# ------------------------------------------------------------------ fits (pure, tested)
def fit_scale(T: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One factor s on the whole prediction, least squares on relative error: s * sum(T)/y ~ 1."""
    r = T.sum(1) / y
    return np.array([float(r.sum() / (r ** 2).sum())] * 2)


def fit_dense_dw(T: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two factors (a_dense, a_dw), least squares on relative error:
    (a_dense T_dense + a_dw T_dw + T_rest) / y ~ 1, non-negative."""
    from nas.latency import nnls

    A = T[:, :2] / y[:, None]
    b = 1 - T[:, 2] / y
    return nnls(A, b)


def predict(T: np.ndarray, a: np.ndarray, overall: bool = False) -> np.ndarray:
    if overall:
        return a[0] * T.sum(1)
    return T[:, 0] * a[0] + T[:, 1] * a[1] + T[:, 2]


def leave_one_group_out(T: np.ndarray, y: np.ndarray, groups: list[str], fit, overall: bool = False
                        ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each row predicted with factors fitted on the rows of the other groups (phones).
    Returns (predictions, factors per held-out group)."""
    groups_a = np.array(groups)
    pred = np.empty(len(y))
    factors = {}
    for g in dict.fromkeys(groups):
        out = groups_a == g
        a = fit(T[~out], y[~out])
        factors[g] = a
        pred[out] = predict(T[out], a, overall)
    return pred, factors


def errors(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    e = pred / y - 1
    worst = int(np.argmax(np.abs(e)))
    return {"n": int(len(y)), "mape_pct": round(float(np.abs(e).mean() * 100), 1),
            "median_signed_pct": round(float(np.median(e) * 100), 1),
            "worst_pct": round(float(e[worst] * 100), 1)}


# ------------------------------------------------------------------ the published rows
def classify(row: dict) -> tuple[str | None, tuple[str, str] | None, str]:
    """(phone, (space, reference), use) of a published row; use is "fit" (XNNPACK
    single-thread fp32), "int8-check" or why it is left out."""
    phone = PHONE_OF.get(row["device"], row["device"])
    model = row["model"].lower()
    net = next((v for k, v in {**NETWORKS, **EFFNET}.items() if model.startswith(k)), None)
    threads = row["threads"].strip()
    if "mobilenet v1" in model or model.startswith("mobilenet_1.0") or "mobilenet_v1" in model:
        return phone, None, "MobileNetV1: not one of the spaces"
    if net is None:
        unstated = "; its runtime's threads are not stated either" if "not stated" in threads else ""
        return phone, None, f"{row['model'].split(' (')[0]}: no space expresses it{unstated}"
    if net[0] == "efficientnet_lite" and threads != "1":
        return phone, net, "4 threads, TFLite's default CPU path (not single-thread XNNPACK)"
    if not threads.startswith("1"):
        return phone, net, "multi-thread (big cores, count not given)"
    if "float32" in row["precision"] and "XNNPACK" in row["backend"]:
        return phone, net, "fit"
    if "quant" in row["precision"]:
        return phone, net, "int8-check"
    return phone, net, "other runtime"


def _short_source(src: str) -> str:
    first = src.split(" ")[0]
    return first.split("@")[0] if "@" in first else first


def load_rows(path: Path = DATA) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pixel_cross_phone.json")
    args = ap.parse_args()
    rules = pixel7_rules()
    spaces = {n: nas.load_space(n) for n in nas.space_names()}
    used, excluded, int8_rows = [], [], []
    for row in load_rows(args.data):
        phone, net, use = classify(row)
        entry = {"phone": phone, "model": row["model"].split(" (")[0], "precision": row["precision"].split(" (")[0],
                 "threads": row["threads"].split(" (")[0], "runtime": row["runtime"], "ms": float(row["latency_ms"])}
        if use == "fit":
            used.append({**entry, "space": net[0], "reference": net[1], "source": _short_source(row["source"])})
        elif use == "int8-check":
            int8_rows.append({**entry, "space": net[0], "reference": net[1]})
        else:
            excluded.append({**entry, "why": use})
    if not used:
        sys.exit(f"{args.data}: no XNNPACK single-thread fp32 row of a network the spaces express")
    y = np.array([r["ms"] for r in used])
    T = np.array([terms(spaces[r["space"]].reference(r["reference"]), core_estimator(r["phone"], rules))
                  for r in used])
    phones = [r["phone"] for r in used]
    arms = {"rules as derived (no fit)": (T.sum(1), None),
            "1 factor (overall scale), leave-one-phone-out": leave_one_group_out(T, y, phones, fit_scale, True),
            "2 factors (dense, depthwise), leave-one-phone-out":
                leave_one_group_out(T, y, phones, fit_dense_dw)}
    results: dict = {"rules": rules, "cores": CORES, "rows_used": used, "arms": {}}
    print(f"Rows used (XNNPACK, 1 thread, fp32, networks the spaces express): {len(used)} of "
          f"{len(used) + len(excluded) + len(int8_rows)}\n")
    print(table(["phone", "core", "GHz", "fp32 MAC/cycle", "network", "published ms", "source"],
                [[r["phone"], CORES[r["phone"]]["core"] + (" (assumed)" if CORES[r["phone"]]["assumed"] else ""),
                  CORES[r["phone"]]["ghz"], CORES[r["phone"]]["fp32_mac"], r["reference"], r["ms"], r["source"]]
                 for r in used]))
    print()
    rows = []
    for arm, (pred, factors) in arms.items():
        per = {}
        for ph in dict.fromkeys(phones):
            m = np.array(phones) == ph
            per[ph] = errors(pred[m], y[m])
            f = "" if factors is None else ", ".join(f"{v:.2f}" for v in np.unique(factors[ph].round(3)))
            rows.append([arm, ph, per[ph]["n"], f"{per[ph]['mape_pct']}%", f"{per[ph]['median_signed_pct']:+}%",
                         f"{per[ph]['worst_pct']:+}%", f])
        allp = errors(pred, y)
        m = np.array([not CORES[p]["assumed"] for p in phones])
        arm_known = errors(pred[m], y[m])
        rows.append([f"**{arm}**", "all", allp["n"], f"**{allp['mape_pct']}%**", f"{allp['median_signed_pct']:+}%",
                     f"{allp['worst_pct']:+}%", ""])
        rows.append([arm, "all but Pixel 1 (assumed core)", arm_known["n"], f"{arm_known['mape_pct']}%",
                     f"{arm_known['median_signed_pct']:+}%", f"{arm_known['worst_pct']:+}%", ""])
        results["arms"][arm] = {"per_phone": per, "all": allp, "all_but_pixel1": arm_known,
                                "predictions": [round(float(p), 2) for p in pred],
                                "factors": None if factors is None else {k: v.tolist() for k, v in factors.items()}}
    print("fp32, published against predicted (signed error = predicted / published - 1):\n")
    print(table(["rules", "held-out phone", "networks", "MAPE", "median signed", "worst", "factors fitted on the others"],
                rows))
    full2 = fit_dense_dw(T, y)
    full1 = fit_scale(T, y)
    results["factors_all_phones"] = {"1 factor": full1[:1].tolist(), "2 factors": full2.tolist()}
    print(f"\nFactors fitted on all {len(set(phones))} phones: overall {full1[0]:.3f}; dense {full2[0]:.3f}, "
          f"depthwise {full2[1]:.3f}")

    # int8: no XNNPACK single-thread int8 row exists; the one single-core int8 row of a network the
    # spaces express is TFLite 2.5's default uint8 path on a Pixel 4 A76: a separate check, not fitted.
    irows = []
    for r in int8_rows:
        cand = spaces[r["space"]].reference(r["reference"]).replace_bits(8)
        p = float(terms(cand, core_estimator(r["phone"], rules)).sum())
        irows.append([r["phone"], r["reference"] + " int8", r["runtime"], r["ms"], f"{p:.2f}", f"{(p / r['ms'] - 1) * 100:+.0f}%"])
        r["predicted_ms"] = round(p, 2)
    results["int8_check"] = int8_rows
    print("\nint8 (no XNNPACK single-thread int8 row is published; not fitted):\n")
    print(table(["phone", "network", "runtime", "published ms", "rules' ms", "error"], irows))

    # pixel7: its own rules, and the rules with the factors fitted on all phones
    prow = []
    for sp, ref in [("mobilenetv2", "mobilenet_v2_1.0_224"), ("mobilenetv3", "mobilenet_v3_large_1.0_224"),
                    ("mobilenetv3", "mobilenet_v3_small_1.0_224")] + list(EFFNET.values()):
        c = spaces[sp].reference(ref)
        t32 = terms(c, core_estimator("Pixel 7", rules))
        t8 = terms(c.replace_bits(8), core_estimator("Pixel 7", rules))
        prow.append([ref, f"{t32.sum():.2f}", f"{predict(t32[None], full2)[0]:.2f}", f"{t8.sum():.2f}"])
    print("\npixel7 (Cortex-X1) predictions, ms:\n")
    print(table(["reference", "fp32, pixel7 as derived", "fp32, 2 factors fitted on all phones", "int8, as derived"],
                prow))
    results["pixel7"] = prow
    print("\nLeft out:\n")
    print(table(["phone", "model", "precision", "threads", "ms", "why"],
                [[r["phone"], r["model"], r["precision"], r["threads"], r["ms"], r["why"]] for r in excluded]))
    results["excluded"] = excluded
    results["newer_tensor_phone"] = "no Tensor-phone row in the data: no separate test"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
