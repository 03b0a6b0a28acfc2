"""int8 against fp32 speed per format (ONNX in onnxruntime, LiteRT in its interpreter with
XNNPACK), 1 thread, for the MobileNetV2, V3 and ShuffleNetV2 references at 224 px; and the
winner of a run (its card: input side, accuracy and latency per format).

    python benchmarks/litert_formats.py [--run results/<run>] [--out benchmarks/results/litert_formats.json]

Needs the litert extra. Weights are untrained (speed does not depend on them); int8 files are
calibrated on 32 CIFAR-10 subset images resized to 224 (../shared/data) or, without it, on
seeded noise. Latency: median of repeated single-image calls after warm-up, 1 thread; the
four files of one network are timed back to back, so compare ratios within a row.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

import nas  # noqa: E402
from nas.export import export_onnx, litert, ort_session, time_session  # noqa: E402
from nas.models import strip_fake_quant

REFS = [("mobilenetv2", "mobilenet_v2_1.0_224"), ("mobilenetv3", "mobilenet_v3_large_1.0_224"),
        ("mobilenetv3", "mobilenet_v3_small_1.0_224"), ("shufflenetv2", "shufflenet_v2_x1.0_224")]


def calibration(n: int = 32) -> np.ndarray:
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10_subset_10k_2k.npz"
    try:
        ds = nas.load_dataset(str(path))
        return ds.test_arrays(resolution=224)[0][:n]
    except nas.errors.NasError:
        return np.random.default_rng(0).standard_normal((n, 3, 224, 224)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, help="A run folder whose winner to report (card.json).")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/litert_formats.json"))
    args = ap.parse_args()
    litert.require()
    print(f"Measured on: {machine()}\n")
    calib = calibration()
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for space, ref in REFS:
            cand = nas.load_space(space).reference(ref)
            model = strip_fake_quant(nas.build_model(cand, num_classes=1000)).eval()
            d = Path(tmp)
            export_onnx(model, d / "m.onnx", resolution=224)
            export_onnx(model, d / "m.int8.onnx", resolution=224, int8=True, calibration=calib)
            litert.export_tflite(model, d / "m.tflite", [1, 3, 224, 224])
            litert.export_tflite(model, d / "m.int8.tflite", [1, 3, 224, 224], int8=True, calibration=calib)
            x = {"input": calib[:1]}
            r = {"reference": ref,
                 "onnx_fp32_ms": time_session(ort_session(d / "m.onnx"), x, min_runs=20, min_seconds=1.0),
                 "onnx_int8_ms": time_session(ort_session(d / "m.int8.onnx"), x, min_runs=20, min_seconds=1.0),
                 "tflite_fp32_ms": litert.tflite_latency(d / "m.tflite", min_runs=20, min_seconds=1.0),
                 "tflite_int8_ms": litert.tflite_latency(d / "m.int8.tflite", min_runs=20, min_seconds=1.0),
                 "tflite_int8_io": litert.tflite_io(d / "m.int8.tflite")["input"]["dtype"],
                 "tflite_fp32_mb": (d / "m.tflite").stat().st_size / 1e6,
                 "tflite_int8_mb": (d / "m.int8.tflite").stat().st_size / 1e6}
            results.append(r)
            rows.append([ref, f"{r['onnx_fp32_ms']:.2f}", f"{r['onnx_int8_ms']:.2f}",
                         f"x{r['onnx_fp32_ms'] / r['onnx_int8_ms']:.2f}", f"{r['tflite_fp32_ms']:.2f}",
                         f"{r['tflite_int8_ms']:.2f}", f"x{r['tflite_fp32_ms'] / r['tflite_int8_ms']:.2f}",
                         f"{r['tflite_fp32_mb']:.1f} / {r['tflite_int8_mb']:.1f}"])
    print(table(["reference (224 px)", "ONNX fp32 ms", "ONNX int8 ms", "int8 speed-up", "LiteRT fp32 ms",
                 "LiteRT int8 ms", "int8 speed-up", ".tflite MB fp32 / int8"], rows))
    out = {"machine": machine(), "references": results}
    if args.run:
        card = json.loads((args.run / "winner" / "card.json").read_text())
        t, h = card.get("tflite") or {}, card.get("host_latency_ms") or {}
        win = {"candidate": card["candidate"], "input_shape": card["input"]["shape"],
               "onnx_fp32_acc": card["test_accuracy_fp32"], "onnx_int8_acc": card["test_accuracy_int8"],
               "onnx_fp32_ms": h.get("measured_fp32"), "onnx_int8_ms": h.get("measured_int8"),
               "tflite_fp32_acc": t.get("test_accuracy_fp32"), "tflite_int8_acc": t.get("test_accuracy_int8"),
               "tflite_fp32_ms": t.get("host_latency_fp32_ms"), "tflite_int8_ms": t.get("host_latency_int8_ms")}
        out["winner"] = win
        print(f"\nwinner {win['candidate']}, input {win['input_shape']}")
        fmt = lambda v, s="": "n/a" if v is None else f"{v * 100:.1f}%" if s == "%" else f"{v:.3f}"  # noqa: E731
        print(table(["format", "fp32 test acc", "int8 test acc", "fp32 ms", "int8 ms"],
                    [["ONNX (onnxruntime)", fmt(win["onnx_fp32_acc"], "%"), fmt(win["onnx_int8_acc"], "%"),
                      fmt(win["onnx_fp32_ms"]), fmt(win["onnx_int8_ms"])],
                     ["LiteRT (XNNPACK)", fmt(win["tflite_fp32_acc"], "%"), fmt(win["tflite_int8_acc"], "%"),
                      fmt(win["tflite_fp32_ms"]), fmt(win["tflite_int8_ms"])]]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
