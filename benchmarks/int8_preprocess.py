"""Issue 6 (b): int8 speed on this host with and without onnxruntime's quant_pre_process.

For each network (candidate at its own resolution, 10 classes, batch 1): fp32 ONNX, plain
static QDQ quantization, and nas.latency._host.quantize_int8 (pre-processed QDQ, what hwnas
exports). onnxruntime, 1 thread, fastest of repeated runs.

    python benchmarks/int8_preprocess.py [KEY_OR_REFERENCE ...]
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

DEFAULT = ["mobilenet_v2_1.0_224", "mobilenet_v3_small_1.0_224", "shufflenet_v2_x1.0_224"]


def resolve(text: str):
    import nas

    if ":" in text:
        return nas.parse_candidate(text)
    for name in nas.space_names():
        space = nas.load_space(name)
        if text in space.references():
            return space.reference(text)
    raise SystemExit(f"unknown key or reference {text!r}")


def main() -> None:
    import torch
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    import nas
    from nas.export._onnx import (
        _Reader,
        export_module,
        ort_session,
        quantize_int8,
        time_session,
    )

    logging.getLogger().setLevel(logging.ERROR)
    torch.set_num_threads(1)
    print("| network | fp32 ms | int8 ms, plain QDQ | int8 ms, pre-processed QDQ |\n|---|---|---|---|")
    for text in sys.argv[1:] or DEFAULT:
        cand = resolve(text)
        model = nas.build_model(cand.replace_bits(32), 10).eval()
        x = np.random.default_rng(0).standard_normal((1, 3, cand.resolution, cand.resolution)).astype(np.float32)
        calib = [np.random.default_rng(1 + i).standard_normal(x.shape).astype(np.float32) for i in range(4)]
        with tempfile.TemporaryDirectory() as tmp:
            fp, plain, pre = Path(tmp) / "f.onnx", Path(tmp) / "plain.onnx", Path(tmp) / "pre.onnx"
            export_module(model, x, fp)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_static(str(fp), str(plain), _Reader("input", calib), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax)
            quantize_int8(fp, pre, calib)
            t = {k: time_session(ort_session(p), {"input": x}, min_runs=30, min_seconds=1.0)
                 for k, p in (("fp32", fp), ("plain", plain), ("pre", pre))}
        print(f"| {text} | {t['fp32']:.2f} | {t['plain']:.2f} ({t['fp32'] / t['plain']:.2f}x) | "
              f"{t['pre']:.2f} ({t['fp32'] / t['pre']:.2f}x) |", flush=True)


if __name__ == "__main__":
    main()
