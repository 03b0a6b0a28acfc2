"""Issue 6 (b): where an int8 MobileNetV3 spends its time in onnxruntime on this host.

fp32 ONNX against hwnas's int8 export (nas.latency._host.quantize_int8: pre-processed static
QDQ, per-channel weights), onnxruntime's per-node profiler, 1 thread, batch 1, the network at
its own resolution; time per run by operator type (profiling inflates absolute times: compare
the two columns, not these against other tables).

    python benchmarks/int8_profile.py [REFERENCE ...]   # default mobilenet_v3_small_1.0_224 mobilenet_v2_1.0_224
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from int8_preprocess import resolve  # noqa: E402

RUNS = 200


def profile(path: Path, x: np.ndarray, prefix: Path) -> collections.Counter:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = str(prefix)
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for _ in range(20):
        sess.run(None, {"input": x})
    for _ in range(RUNS):
        sess.run(None, {"input": x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    per_op: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
    total_runs = RUNS + 20
    return collections.Counter({k: v / total_runs for k, v in per_op.items()})


def main() -> None:
    import torch

    import nas
    from nas.export import export_module, quantize_int8

    logging.getLogger().setLevel(logging.ERROR)
    torch.set_num_threads(1)
    print(f"Measured on: {machine()}\n")
    for text in sys.argv[1:] or ["mobilenet_v3_small_1.0_224", "mobilenet_v2_1.0_224"]:
        cand = resolve(text)
        model = nas.build_model(cand.replace_bits(32), 10).eval()
        x = np.random.default_rng(0).standard_normal((1, 3, cand.resolution, cand.resolution)).astype(np.float32)
        calib = [np.random.default_rng(1 + i).standard_normal(x.shape).astype(np.float32) for i in range(4)]
        with tempfile.TemporaryDirectory() as tmp:
            fp, q = Path(tmp) / "f.onnx", Path(tmp) / "q.onnx"
            export_module(model, x, fp)
            quantize_int8(fp, q, calib)
            f32, i8 = profile(fp, x, Path(tmp) / "fp32"), profile(q, x, Path(tmp) / "int8")
        print(f"{text}: fp32 {sum(f32.values()):.0f} us per run, int8 {sum(i8.values()):.0f} us per run "
              f"(profiled)\n")
        print("| fp32 op | us per run | int8 op | us per run |\n|---|---|---|---|")
        a, b = f32.most_common(), i8.most_common()
        for i in range(max(len(a), len(b))):
            left = f"{a[i][0]} | {a[i][1]:.0f}" if i < len(a) else " | "
            right = f"{b[i][0]} | {b[i][1]:.0f}" if i < len(b) else " | "
            print(f"| {left} | {right} |")
        print()


if __name__ == "__main__":
    main()
