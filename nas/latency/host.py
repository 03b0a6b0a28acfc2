"""The ``host`` profile: latencies measured on this machine with onnxruntime (CPU provider).

Each OpSpec is exported as a tiny ONNX model (fp32, or int8 by onnxruntime's static QDQ
quantization, the same path as ``export_onnx(..., int8=True)``) and timed with a fixed
thread count (1 by default). Timings are cached on disk per CPU model, onnxruntime version
and thread count (``$HWNAS_CACHE`` or ``~/.cache/hwnas``), so a table grows as searches meet
new ops and survives between runs; writes are atomic.

On this runtime 4- and 6-bit blocks execute on int8 kernels: they are timed as int8 (their
bytes still count at their own width).
"""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from nas._paths import atomic_write
from nas.candidate import FLOAT_BITS, Candidate, OpSpec
from nas.latency.estimator import Estimator, op_features
from nas.latency.profile import Calibration, DeviceError

__all__ = ["cache_dir", "measure_ops", "measure_candidate", "load_host_state", "save_calibration",
           "host_estimator", "quantize_int8", "THREADS"]

THREADS = int(os.environ.get("HWNAS_HOST_THREADS", "1"))
Progress = Callable[[int, int], None]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_dir() -> Path:
    import onnxruntime as ort

    root = Path(os.environ.get("HWNAS_CACHE", Path.home() / ".cache" / "hwnas"))
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", _cpu_model()).strip("-")
    # "q2": int8 timings since quantize_int8 pre-processes the graph (older int8 entries differ)
    return root / "host" / f"{slug}-ort{ort.__version__}-t{THREADS}-q2"


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=0, sort_keys=True))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as exc:
        raise DeviceError(f"host latency cache {path} is unreadable ({exc}); delete it to re-measure") from None


def load_host_state():
    d = cache_dir()
    table = {k: float(v) for k, v in _read_json(d / "table.json").items()}
    state = _read_json(d / "calibration.json")
    try:
        calib = {k: Calibration(**v) for k, v in state.get("calibration", {}).items()}
    except TypeError:  # written by an older version: recalibrate
        calib = {}
    return table, calib, state.get("validation", {}), measure_into_cache


def save_calibration(calib: dict[str, Calibration], validation: dict | None = None) -> Path:
    path = cache_dir() / "calibration.json"
    state = _read_json(path)
    state["calibration"] = {k: c.to_dict() for k, c in calib.items()}
    if validation is not None:
        state["validation"] = validation
    _write_json(path, state)
    return path


def host_estimator(table: dict[str, float], est_raw: dict) -> Estimator:
    """The estimator fitted to the measured entries (with the YAML's prior), so ops not yet
    measured still get a number."""
    prior = Estimator({str(k): float(v) for k, v in est_raw.get("coef", {}).items()})
    if len(table) < 20:
        return prior
    rows, ys = [], []
    for key, ms in table.items():
        try:
            op = OpSpec.from_key(key)
        except ValueError:
            raise DeviceError(f"host latency cache {cache_dir()}: bad op key {key!r}; "
                              f"delete the cache to re-measure") from None
        rows.append(op_features(op))
        ys.append(ms)
    return Estimator.fit(np.array(rows), np.array(ys), prior=prior)


# --------------------------------------------------------------------------- timing

def _session(path_or_bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(path_or_bytes, opts, providers=["CPUExecutionProvider"])


def time_session(sess, feed: dict, min_runs: int = 20, min_seconds: float = 0.2,
                 max_runs: int = 5000) -> float:
    """Fastest of repeated runs after warm-up, in milliseconds.

    On a shared machine interference only ever adds time, so the minimum is the steadiest
    estimate of what the runtime needs: repeats of the same network varied 1-9% by minimum
    against 5-51% by median on this 2-core host (BENCHMARKS.md). Op tables and end-to-end
    validation use the same statistic, so they stay comparable."""
    for _ in range(3):
        sess.run(None, feed)
    best = float("inf")
    runs = 0
    start = time.perf_counter()
    while runs < max_runs and (runs < min_runs or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        sess.run(None, feed)
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return best * 1e3


def _input_for(op: OpSpec, batch: int = 1) -> np.ndarray:
    rng = np.random.default_rng(0)
    if op.kind == "linear":
        return rng.standard_normal((batch, op.cin)).astype(np.float32)
    return rng.standard_normal((batch, op.cin, op.h, op.w)).astype(np.float32)


class _Reader:
    """Calibration data for static quantization."""

    def __init__(self, name: str, arrays: list[np.ndarray]):
        self.items = iter([{name: a} for a in arrays])

    def get_next(self):
        return next(self.items, None)


def quantize_int8(fp32_path: Path, out_path: Path, calibration: list[np.ndarray]) -> Path:
    """onnxruntime static quantization, QDQ format, per-channel int8 weights, uint8
    activations, calibrated on ``calibration`` arrays (the model's input).

    The graph first goes through onnxruntime's ``quant_pre_process`` (shape inference and
    constant folding): without it the exporter's Clip bounds stay as nodes, the quantizer
    cannot fuse activations into the integer convolutions, and the int8 model ran 0.5-0.8x
    the fp32 speed on this host; with it 1.0-2.4x (BENCHMARKS.md, issue 6)."""
    import logging
    import tempfile

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice through the root logger
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
            warnings.simplefilter("ignore")
            src = Path(tmp) / "pre.onnx"
            try:
                quant_pre_process(str(fp32_path), str(src))
            except Exception:  # pre-processing is an optimisation: quantize the graph as it is
                src = Path(fp32_path)
            quantize_static(str(src), str(out_path), _Reader("input", calibration),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
    finally:
        root.setLevel(level)
    return out_path


def _export(module, x: np.ndarray, path: Path) -> None:
    import torch

    from nas.models.fold import fold_batchnorm

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(fold_batchnorm(module), (torch.from_numpy(x),), str(path), opset_version=17,
                          dynamo=False, input_names=["input"], output_names=["output"])


def strip_boundary_qdq(path: Path) -> dict[str, np.dtype]:
    """Turn a QDQ model's float input/output into its quantized tensors, in place.

    Inside a network, consecutive int8 ops pass uint8 tensors to each other: the runtime
    fuses DequantizeLinear -> op -> QuantizeLinear into one integer kernel and no float
    tensor appears between ops. An op timed on its own would also pay a QuantizeLinear on its
    input and a DequantizeLinear on its output; removing them times what the network runs.
    Returns {input name: numpy dtype} for feeding the stripped model; empty when the input
    is not quantized directly (e.g. split first), in which case the input stays float."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    g = model.graph
    feeds: dict[str, np.dtype] = {}
    for inp in list(g.input):
        q = [n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == inp.name]
        if len(q) != 1:
            continue
        q = q[0]
        zp = next((t for t in g.initializer if t.name == q.input[2]), None) if len(q.input) > 2 else None
        elem = zp.data_type if zp is not None else TensorProto.UINT8
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        g.node.remove(q)
        g.input.remove(inp)
        g.input.append(helper.make_tensor_value_info(q.output[0], elem, shape))
        feeds[q.output[0]] = np.uint8 if elem == TensorProto.UINT8 else np.int8
    for out in list(g.output):
        dq = [n for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] == out.name]
        if len(dq) != 1:
            continue
        dq = dq[0]
        g.node.remove(dq)
        g.output.remove(out)
        g.output.append(helper.make_tensor_value_info(dq.input[0], TensorProto.UINT8, None))
    onnx.save(model, str(path))
    return feeds


def measure_op(op: OpSpec, exec_bits: int, workdir: Path) -> float:
    import torch

    from nas.models.blocks import build_op

    torch.manual_seed(0)
    module = build_op(op)
    x = _input_for(op)
    fp32 = workdir / "op.onnx"
    _export(module, x, fp32)
    if exec_bits >= FLOAT_BITS:
        return time_session(_session(str(fp32)), {"input": x})
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal(x.shape).astype(np.float32) for _ in range(4)]
    path = quantize_int8(fp32, workdir / "op.int8.onnx", calib)
    feeds = strip_boundary_qdq(path)
    if not feeds:  # the input is split or reshaped before it is quantized: keep it float
        return time_session(_session(str(path)), {"input": x})
    (name, dtype), = feeds.items()
    xq = rng.integers(0, 255 if dtype == np.uint8 else 127, size=x.shape).astype(dtype)
    return time_session(_session(str(path)), {name: xq})


def measure_ops(ops: list[tuple[OpSpec, int]], progress: Progress | None = None,
                save_every: int = 25) -> dict[str, float]:
    """Time every (op, executed bits) not yet in the cache; returns {table key: ms} for all.
    The caller's torch thread count is restored afterwards."""
    from dataclasses import replace

    import torch

    specs = [op if op.bits == eb else replace(op, bits=eb) for op, eb in ops]
    path = cache_dir() / "table.json"
    table = {k: float(v) for k, v in _read_json(path).items()}
    todo = list({s.key: s for s in specs if s.key not in table}.values())
    out: dict[str, float] = {}
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        with tempfile.TemporaryDirectory(prefix="hwnas-op-") as tmp:
            for i, spec in enumerate(todo, start=1):
                out[spec.key] = measure_op(spec, spec.bits, Path(tmp))
                if progress:
                    progress(i, len(todo))
                if i % save_every == 0 or i == len(todo):
                    # re-read: another process may have added entries meanwhile
                    table = {k: float(v) for k, v in _read_json(path).items()}
                    table.update(out)
                    _write_json(path, table)
    finally:
        torch.set_num_threads(prev_threads)
    table.update(out)
    return {s.key: table[s.key] for s in specs}


def measure_into_cache(ops: list[tuple[OpSpec, int]]) -> dict[str, float]:
    return measure_ops(ops)


def measure_candidate(cand: Candidate, int8: bool, workdir: Path, num_classes: int = 1000) -> float:
    """End-to-end latency of the whole network (ONNX in onnxruntime), milliseconds."""
    import torch

    from nas.models import build_model

    torch.manual_seed(0)
    model = build_model(cand, num_classes).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, cand.resolution, cand.resolution)).astype(np.float32)
    fp32 = workdir / "net.onnx"
    _export(model, x, fp32)
    path = fp32
    if int8:
        rng = np.random.default_rng(1)
        calib = [rng.standard_normal(x.shape).astype(np.float32) for _ in range(4)]
        path = quantize_int8(fp32, workdir / "net.int8.onnx", calib)
    return time_session(_session(str(path)), {"input": x}, min_runs=20, min_seconds=0.4)
