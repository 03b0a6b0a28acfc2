"""Latency every profile predicts for the MobileNetV2/V3 references; leave-one-out error of
the imported profiles on their source tables; op-table sizes per space.

    python benchmarks/latency_references.py [--host]

--host also prices the references on the measured host profile (timing any op not yet in
the host cache, so it takes a few minutes on a cold cache).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

import nas  # noqa: E402
from nas.latency import load_device  # noqa: E402

# Pixel 1, one big core, TFLite fp32, as published in the MobileNetV3 paper (Table 3); an
# external anchor for the imported pixel1 profile, whose table came from another project.
PIXEL1_PUBLISHED = {"mobilenet_v3_large_1.0_224": 51, "mobilenet_v3_large_0.75_224": 39,
                    "mobilenet_v3_small_1.0_224": 15.8, "mobilenet_v3_small_0.75_224": 12.8,
                    "mobilenet_v2_1.0_224": 64}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", action="store_true")
    args = ap.parse_args()
    print(f"Measured on: {machine()}\n")
    devices = ["pixel7", "pixel1", "note10"] + (["host"] if args.host else [])
    profs = {d: load_device(d) for d in devices}
    rows = []
    for d in ("pixel1", "note10"):
        v = profs[d].validation
        rows.append([d, v["entries"], f"{v['loo_mape_pct']}%", f"{v['loo_median_ape_pct']}%",
                     f"{v['loo_within_10pct'] * 100:.0f}%", f"{v['fit_mape_pct']}%"])
    print(table(["profile", "source entries", "LOO MAPE", "LOO median APE", "LOO within ±10%",
                 "in-sample MAPE"], rows))
    print()
    header = ["reference"] + [f"{d} fp32 ({profs[d].provenance})" for d in devices] + \
             [f"{d} int8" for d in devices if 8 in profs[d].native_bits] + ["pixel1 published"]
    rows = []
    for space_name in ("mobilenetv2", "mobilenetv3"):
        space = nas.load_space(space_name)
        for ref in space.references():
            if not ref.endswith("_224"):
                continue
            c = space.reference(ref)
            row = [ref] + [f"{profs[d].latency_ms(c):.2f}" for d in devices]
            row += [f"{profs[d].latency_ms(c.replace_bits(8)):.2f}" for d in devices if 8 in profs[d].native_bits]
            row.append(PIXEL1_PUBLISHED.get(ref, ""))
            rows.append(row)
    print(table(header, rows))
    print()
    rows = []
    for space_name in nas.space_names():
        n = len(nas.load_space(space_name).all_ops())
        rows.append([space_name, n, 2 * n])
    print(table(["space", "distinct ops (target resolutions, fp32)", "host table entries (fp32 + int8)"], rows))


if __name__ == "__main__":
    main()
