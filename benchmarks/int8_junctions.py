"""Issue 28, item 3: what the runtime does at the junction of two ops, measured on op pairs.

    python benchmarks/int8_junctions.py [--source benchmarks/results/host_litert.json] [--device host]
        [--pairs val|cal] [--out benchmarks/results/int8_junctions.json]

An op timed alone cannot see what the runtime does between it and its neighbour: in int8,
Quantize/Dequantize pairs that fuse or stay, NCHW<->NHWC transposes that cancel between two
integer kernels or do not. nn-Meter finds such fusion by timing op pairs; this does the same on
the host profile's runtime: every pair of consecutive ops of the calibration (and, with
``--pairs val``, the validation) candidates of ``--source`` (a ``host_litert.py`` run, whose
whole-network timings are reused, not re-taken) is exported as one model and timed with the two
ops' host-table entries (fastest of repeated runs): junction = pair - a - b, as
``nas.latency.measure_junctions`` measures it (pairs of two precisions, a float pooling op beside
int8 ops, cannot be exported as one model and are left out).

Then, per precision, the calibration is fitted and judged on the source's validation timings
four ways: as the profile does now (sums of ops); with a junction model (junction ms =
alpha + beta * Melems at the junction, per producing op kind, fitted on the calibration
candidates' pairs) added to each op; with the measured junctions of the validation candidates
themselves (the best any junction model could do); and the sums alone (no calibration) with and
without measured junctions, which says how much of the ops-to-network gap the junctions hold.
Times things: run nothing else meanwhile, with the same ``HWNAS_CACHE`` as the source run (its op
table); pair timings are cached there too (``pairs.json``) and reused.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

import nas  # noqa: E402
from nas.latency import (  # noqa: E402
    Calibration,
    error_stats,
    fit_junctions,
    junction_melems,
    load_device,
    measure_junctions,
)

PREC_BITS = {"f32": 32, "i8": 8}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", type=Path, default=Path(__file__).parent / "results" / "host_litert.json")
    ap.add_argument("--device", default="host", choices=["host", "host-litert"])
    ap.add_argument("--pairs", default="val", choices=["val", "cal"],
                    help="val: time the validation candidates' pairs too (the measured-junction row)")
    ap.add_argument("--precisions", nargs="+", default=["i8", "f32"], choices=["i8", "f32"])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "int8_junctions.json")
    args = ap.parse_args()
    src = json.loads(args.source.read_text())
    sargs, res = src["args"], src["results"][args.device]
    spaces = ast.literal_eval(sargs["spaces"])  # written by host_litert.py as str(list)
    cal = [c for s in spaces for c in nas.load_space(s).sample_many(int(sargs["cal"]), 0)]
    val = [c for s in spaces for c in nas.load_space(s).sample_many(int(sargs["val"]), 1)]
    timed = [x["key"] for x in res["raw"]["stats"] if x["precision"] == "f32" and x["repeat"] == 0]
    if timed != [c.replace_bits(32).key for c in val]:
        raise SystemExit(f"{args.source}: its validation networks are not this code's seed-1 sample of "
                         f"{spaces} (another space definition?): re-run host_litert.py")
    prof = load_device(args.device)
    runtime = prof.host_runtime
    t0 = time.time()

    def junctions(cands, prec: str) -> list[list[tuple[str, float, float]]]:
        """Per candidate: (producer kind, junction Melems, pair - a - b ms) for each junction, as
        calibration measures them (``measure_junctions``: the two ops' host-table entries)."""
        out = []
        for i, cand in enumerate(cands):
            out.append(measure_junctions(prof, [cand], PREC_BITS[prec]))
            print(f"[{time.time() - t0:5.0f}s] {prec} pairs of candidate {i + 1}/{len(cands)}",
                  file=sys.stderr, flush=True)
        return out

    def fit_model(jx: list[list[tuple[str, float, float]]]) -> dict[str, list[float]]:
        return fit_junctions([j for rows in jx for j in rows])

    def with_junctions(sums: list[dict], jx, model=None) -> list[dict]:
        out = []
        for s, rows in zip(sums, jx):
            s = dict(s)
            for k, m, d in rows:
                add = d if model is None else model[k][0] + model[k][1] * m if k in model else 0.0
                s[k] = s.get(k, 0.0) + add
            out.append(s)
        return out

    def judge(cal_sums, cal_n, cal_e, cal_y, val_sums, val_n, val_e, val_y) -> dict:
        c = Calibration.fit(cal_sums, cal_n, cal_e, cal_y, source="benchmark")
        pred = np.array([c.apply(sum(c.op_scale(k) * v for k, v in s.items()), n, e)
                         for s, n, e in zip(val_sums, val_n, val_e)])
        y = np.asarray(val_y)
        st = error_stats(pred, y)
        return {**st, "within_5pct": round(float(np.mean(np.abs(pred / y - 1) <= 0.05)), 3)}

    summary: dict = {}
    rows_out = []
    for prec in args.precisions:
        cs, cn, ce, cy = res["calibration_raw"][prec][:4]
        vs, vn, ve, vy, vy2 = res["raw"][prec][:5]
        jc = junctions(cal, prec)
        model = fit_model(jc)
        jv = junctions(val, prec) if args.pairs == "val" else None
        y, y2 = np.asarray(vy), np.asarray(vy2)
        r: dict = {"model": model, "yardstick_within_10pct": round(float(np.mean(np.abs(y2 / y - 1) <= 0.10)), 3),
                   "yardstick_within_5pct": round(float(np.mean(np.abs(y2 / y - 1) <= 0.05)), 3)}
        r["now"] = judge(cs, cn, ce, cy, vs, vn, ve, vy)
        # the model prices the validation junctions from op kinds and shapes alone
        vops = [[replace(o, bits=prof.exec_bits(o.bits)) for o in c.replace_bits(PREC_BITS[prec]).ops()] for c in val]
        vj = [[(a.kind, junction_melems(a), 0.0) for a, b in zip(ops, ops[1:]) if a.bits == b.bits] for ops in vops]
        r["junction_model"] = judge(with_junctions(cs, jc, model), cn, ce, cy, with_junctions(vs, vj, model),
                                    vn, ve, vy)
        if jv:
            r["junction_measured"] = judge(with_junctions(cs, jc), cn, ce, cy, with_junctions(vs, jv), vn, ve, vy)
        tot = np.array([sum(s.values()) for s in vs])
        r["sum_vs_measured_pct"] = round(float(np.mean(tot / y - 1) * 100), 2)
        if jv:
            totj = np.array([sum(s.values()) for s in with_junctions(vs, jv)])
            r["sum_with_measured_junctions_vs_measured_pct"] = round(float(np.mean(totj / y - 1) * 100), 2)
            r["junction_ms_mean"] = round(float(np.mean([sum(d for *_, d in rows) for rows in jv])), 4)
        summary[prec] = r
        for name in ("now", "junction_model", "junction_measured"):
            if r.get(name):
                m = r[name]
                rows_out.append([prec, name.replace("_", " "), len(vy), f"{m['within_5pct'] * 100:.0f}%",
                                 f"{m['within_10pct'] * 100:.0f}%", f"{m['mape_pct']:.1f}%", m["kendall_tau"],
                                 f"{r['yardstick_within_10pct'] * 100:.0f}% / {r['yardstick_within_5pct'] * 100:.0f}%"])
        print(f"{prec}: sum of ops vs measured {r['sum_vs_measured_pct']:+.1f}%"
              + (f", with measured junctions {r['sum_with_measured_junctions_vs_measured_pct']:+.1f}% "
                 f"(junctions add {r['junction_ms_mean']:+.3f} ms a network)" if jv else ""), flush=True)
    print(f"Measured on: {machine()}; device {args.device} ({runtime}); whole-network timings from {args.source}\n")
    print(table(["precision", "pricing", "networks", "within ±5%", "within ±10%", "MAPE", "tau",
                 "yardstick vs itself ±10% / ±5%"], rows_out))
    out = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}, "wall_s": round(time.time() - t0, 1),
           "summary": summary}
    args.out.write_text(json.dumps(out, indent=1))
    print(f"raw data: {args.out}")


if __name__ == "__main__":
    main()
