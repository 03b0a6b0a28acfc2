"""Host profile fidelity: calibrate on one seeded sample of candidates, validate on another.

    python benchmarks/host_fidelity.py [--cal 12] [--val 20] [--spaces mobilenetv3 ...]

Ops met by the candidates are timed first (cached in the host cache); then every candidate is
timed end to end in onnxruntime (1 thread), fp32 (all blocks float) and int8 (all blocks at 8
bits, static QDQ). The calibration is fitted on the seed-0 sample of all spaces together and
evaluated on the seed-1 sample. Raw data go to benchmarks/results/host_fidelity.json.
Run nothing else on the machine meanwhile: the timings are what is being judged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

import nas  # noqa: E402
from nas.latency import (
    Calibration,
    end_to_end,
    kendall_tau,
    load_device,  # noqa: E402
)


def metrics(pred, meas) -> dict:
    pred, meas = np.asarray(pred), np.asarray(meas)
    err = pred / meas - 1
    return {"within_5pct": float(np.mean(np.abs(err) <= 0.05)),
            "within_10pct": float(np.mean(np.abs(err) <= 0.10)),
            "mape_pct": float(np.mean(np.abs(err)) * 100), "tau": kendall_tau(pred, meas)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cal", type=int, default=12)
    ap.add_argument("--val", type=int, default=20)
    ap.add_argument("--spaces", nargs="+", default=nas.space_names())
    args = ap.parse_args()
    prof = load_device("host")
    t0 = time.time()
    raw = {}
    out = Path(__file__).parent / "results" / "host_fidelity.json"
    for space in args.spaces:
        for split, seed, n in (("cal", 0, args.cal), ("val", 1, args.val)):
            data = end_to_end(nas.load_space(space).sample_many(n, seed), prof)
            raw[f"{space}/{split}"] = {k: [list(c) for c in v] for k, v in data.items()}
            out.write_text(json.dumps({"machine": machine(), "raw": raw}, indent=1))  # keep partial work
            print(f"{space}/{split} done at {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    report(raw, args.spaces)


def report(raw: dict, spaces: list[str]) -> dict:
    print(f"Measured on: {machine()}\n")
    calib = {}

    def cols(split, prec, sel):
        return [sum((raw[f"{s}/{split}"][prec][i] for s in sel), []) for i in range(4)]

    for prec in ("f32", "i8"):
        calib[prec] = Calibration.fit(*cols("cal", prec, spaces), source="benchmark")
    rows = []
    for space in spaces + ["all"]:
        sel = spaces if space == "all" else [space]
        for prec in ("f32", "i8"):
            ks, n, e, m = cols("val", prec, sel)
            m = np.asarray(m)
            s = np.array([sum(d.values()) for d in ks])
            raw_m = metrics(s, m)
            cal = calib[prec]
            cal_m = metrics([cal.apply(sum(cal.op_scale(k) * v for k, v in d.items()), b, c)
                             for d, b, c in zip(ks, n, e)], m)
            rows.append([space, prec, len(m), f"{np.mean(s / m - 1) * 100:+.1f}%",
                         f"{raw_m['within_10pct'] * 100:.0f}%", f"{raw_m['tau']:.3f}",
                         f"{cal_m['within_5pct'] * 100:.0f}%", f"{cal_m['within_10pct'] * 100:.0f}%",
                         f"{cal_m['mape_pct']:.1f}%", f"{cal_m['tau']:.3f}"])
    print(table(["space", "precision", "networks", "sum of ops vs measured (mean)",
                 "sum: within ±10%", "sum: tau", "calibrated: ±5%", "calibrated: ±10%",
                 "calibrated: MAPE", "calibrated: tau"], rows))
    for prec, c in calib.items():
        print(f"\ncalibration {prec}: {c.to_dict()}")
    return calib


if __name__ == "__main__":
    main()
