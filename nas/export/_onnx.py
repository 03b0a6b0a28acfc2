"""The one ONNX toolchain: export (fp32, or int8 by onnxruntime static QDQ quantization),
verification in onnxruntime, sessions, timing and accuracy. The winner's export, the host
profile's op and network timings, onboarding's op models and the benchmarks all use it.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from nas._paths import atomic_path
from nas.errors import ExportError
from nas.models import fold_batchnorm

__all__ = ["export_onnx", "export_module", "quantize_int8", "strip_boundary_qdq", "ort_session",
           "time_session", "onnx_accuracy", "onnx_accuracy_batches", "OPSET", "PARITY_ATOL"]

OPSET = 17
PARITY_ATOL = 1e-4


def ort_session(path_or_bytes, threads: int = 1, quiet: bool = True):
    """An onnxruntime CPU session with ``threads`` intra-op threads (1 inter-op) and every
    graph optimisation on: how hwnas runs every model it times or scores."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if quiet:
        opts.log_severity_level = 3
    src = str(path_or_bytes) if isinstance(path_or_bytes, (str, os.PathLike)) else path_or_bytes
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def export_module(module: torch.nn.Module, x: np.ndarray, path: str | os.PathLike,
                  output_name: str = "output") -> None:
    """Export ``module`` (batch norm folded) on input ``x`` with a fixed batch: the op models of
    latency tables and the whole networks the host profile times."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(fold_batchnorm(module), (torch.from_numpy(x),), str(path), opset_version=OPSET,
                          dynamo=False, input_names=["input"], output_names=[output_name])


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, resolution: int | None = None,
                int8: bool = False, check: bool = True, seed: int = 0,
                calibration: np.ndarray | None = None) -> Path:
    """Write ``model`` as ONNX (opset 17, input ``input`` NCHW float32 with a dynamic batch,
    output ``logits``; batch norm folded into the convolutions). The file is written
    atomically.

    fp32: with ``check``, onnxruntime's outputs must match torch within 1e-4 on a seeded batch
    (relative to the logits' scale; or match the network run in float64 that closely).
    int8: onnxruntime static quantization (QDQ, per-channel int8 weights, uint8 activations;
    the path the host profile times), calibrated on ``calibration`` (N x C x H x W float32
    images, normalised as the model expects; seeded noise if None, which is fine for timing
    but not for accuracy). With ``check`` the quantized graph must load and give finite outputs.
    """
    path = Path(path)
    res = resolution or getattr(model, "resolution", None)
    if not res:
        raise ExportError("export_onnx needs a resolution (the model has none)")
    in_ch = getattr(model, "in_channels", 3)
    model = fold_batchnorm(model)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, in_ch, res, res, generator=gen)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                # The TorchScript exporter: ~15x faster than the dynamo one for these graphs,
                # which matters when a latency table exports thousands of op models.
                torch.onnx.export(model, (x,), str(tmp), opset_version=OPSET, dynamo=False,
                                  input_names=["input"], output_names=["logits"],
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
            if int8:
                fp32_tmp = Path(str(tmp) + ".fp32")
                os.replace(tmp, fp32_tmp)
                try:
                    quantize_int8(fp32_tmp, tmp, _calibration_batches(x, calibration, seed))
                finally:
                    fp32_tmp.unlink(missing_ok=True)
                if check:
                    _check_runs(tmp, x)
            elif check:
                _check_parity(model, tmp, x)
    except ExportError:
        raise
    except Exception as exc:  # torch/onnx raise many types; report one
        raise ExportError(f"ONNX export of {getattr(model, 'key', 'model')} failed: {exc}") from exc
    return path


def _calibration_batches(x: torch.Tensor, calibration, seed: int) -> list[np.ndarray]:
    if calibration is None:
        gen = np.random.default_rng(seed)
        return [gen.standard_normal((1, *x.shape[1:])).astype(np.float32) for _ in range(8)]
    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.ndim != 4 or calibration.shape[1:] != tuple(x.shape[1:]):
        raise ExportError(f"calibration images must be N x {tuple(x.shape[1:])}, got {calibration.shape}")
    return [calibration[i:i + 1] for i in range(len(calibration))]


def _check_runs(onnx_path: Path, x: torch.Tensor) -> None:
    got = ort_session(onnx_path).run(None, {"input": x.numpy()})[0]
    if not np.all(np.isfinite(got)):
        raise ExportError("the int8 ONNX model gives non-finite outputs")


def _check_parity(model: torch.nn.Module, onnx_path: Path, x: torch.Tensor) -> None:
    got = ort_session(onnx_path).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    err = float(np.max(np.abs(got - want)))
    # relative to the logits' scale: a longer-trained network has larger logits, and float32
    # kernels that sum in another order differ in proportion (2.7e-4 on logits of ~10 was seen)
    tol = PARITY_ATOL * max(1.0, float(np.max(np.abs(want))))
    if np.isfinite(err) and err <= tol:
        return
    # Beyond that, the two float32 results may simply round apart in opposite directions: judge
    # onnxruntime against the same network in float64 instead. (A briefly trained winner on a
    # noise input, logits ~54: torch float32 was 0.0033 from float64, onnxruntime 0.0027, and
    # the two 0.0060 apart, over the 0.0054 allowed between them.)
    own = theirs = float("inf")
    if np.isfinite(err):
        try:
            with torch.no_grad():
                exact = copy.deepcopy(model).double()(x.double()).numpy()
            own, theirs = float(np.max(np.abs(want - exact))), float(np.max(np.abs(got - exact)))
        except Exception:  # a module without a float64 path: the float32 comparison stands
            pass
    if theirs <= tol:
        return
    raise ExportError(f"ONNX output differs from torch by {err:.3g} (> {tol:.3g}"
                      + (f"; from float64: onnxruntime {theirs:.3g}, torch {own:.3g})" if np.isfinite(own) else ")"))


class _Reader:
    """Calibration data for static quantization."""

    def __init__(self, name: str, arrays: Sequence[np.ndarray]):
        self.items = iter([{name: a} for a in arrays])

    def get_next(self):
        return next(self.items, None)


def quantize_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike,
                  calibration: Sequence[np.ndarray]) -> Path:
    """onnxruntime static quantization, QDQ format, per-channel int8 weights, uint8
    activations, calibrated on ``calibration`` arrays (the model's input).

    The graph first goes through onnxruntime's ``quant_pre_process`` (shape inference and
    constant folding): without it the exporter's Clip bounds stay as nodes, the quantizer
    cannot fuse activations into the integer convolutions, and the int8 model ran 0.5-0.8x
    the fp32 speed on this host; with it 1.0-2.4x (BENCHMARKS.md, issue 6)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
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
    return Path(out_path)


def strip_boundary_qdq(path: str | os.PathLike) -> dict[str, type]:
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
    feeds: dict[str, type] = {}
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


def onnx_accuracy(path: str | os.PathLike, x: np.ndarray, y: np.ndarray, batch: int = 250) -> float:
    """Top-1 accuracy of an ONNX file in onnxruntime (1 thread) on float32 NCHW inputs (arrays,
    ``batch`` at a time). A dataset's split: ``onnx_accuracy_batches``."""
    return onnx_accuracy_batches(path, ((x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)))


def onnx_accuracy_batches(path: str | os.PathLike, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Top-1 accuracy of an ONNX file in onnxruntime (1 thread) over (float32 NCHW, labels)
    batches, such as ``Dataset.eval_batches``: one batch in memory at a time."""
    sess = ort_session(path)
    correct = n = 0
    for xb, yb in batches:
        out = sess.run(None, {"input": np.ascontiguousarray(xb, dtype=np.float32)})[0]
        correct += int((out.argmax(1) == np.asarray(yb)).sum())
        n += len(yb)
    return correct / max(1, n)
