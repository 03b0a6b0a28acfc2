"""ONNX export, checked in onnxruntime."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from nas.errors import ExportError

__all__ = ["export_onnx", "OPSET", "PARITY_ATOL"]

OPSET = 17
PARITY_ATOL = 1e-4


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, resolution: int | None = None,
                int8: bool = False, check: bool = True, seed: int = 0,
                calibration: np.ndarray | None = None) -> Path:
    """Write ``model`` as ONNX (opset 17, input ``input`` NCHW float32 with a dynamic batch,
    output ``logits``; batch norm folded into the convolutions). The file is written
    atomically.

    fp32: with ``check``, onnxruntime's outputs must match torch within 1e-4 on a seeded batch.
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
    from nas.models.fold import fold_batchnorm

    model = fold_batchnorm(model)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, in_ch, res, res, generator=gen)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o644)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # The TorchScript exporter: ~15x faster than the dynamo one for these graphs, which
            # matters when a latency table exports thousands of op models.
            torch.onnx.export(model, (x,), tmp, opset_version=OPSET, dynamo=False,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        if int8:
            fp32_tmp = tmp + ".fp32"
            os.replace(tmp, fp32_tmp)
            try:
                _quantize(fp32_tmp, tmp, x, calibration, seed)
            finally:
                os.unlink(fp32_tmp)
            if check:
                _check_runs(tmp, x)
        elif check:
            _check_parity(model, tmp, x)
        os.replace(tmp, path)
    except ExportError:
        raise
    except Exception as exc:  # torch/onnx raise many types; report one
        raise ExportError(f"ONNX export of {getattr(model, 'key', 'model')} failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _quantize(fp32: str, out: str, x: torch.Tensor, calibration, seed: int) -> None:
    from pathlib import Path as _P

    from nas.latency.host import quantize_int8

    if calibration is None:
        gen = np.random.default_rng(seed)
        batches = [gen.standard_normal((1, *x.shape[1:])).astype(np.float32) for _ in range(8)]
    else:
        calibration = np.asarray(calibration, dtype=np.float32)
        if calibration.ndim != 4 or calibration.shape[1:] != tuple(x.shape[1:]):
            raise ExportError(f"calibration images must be N x {tuple(x.shape[1:])}, "
                              f"got {calibration.shape}")
        batches = [calibration[i:i + 1] for i in range(len(calibration))]
    quantize_int8(_P(fp32), _P(out), batches)


def _check_runs(onnx_path: str, x: torch.Tensor) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    if not np.all(np.isfinite(got)):
        raise ExportError("the int8 ONNX model gives non-finite outputs")


def _check_parity(model: torch.nn.Module, onnx_path: str, x: torch.Tensor) -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    err = float(np.max(np.abs(got - want)))
    if not np.isfinite(err) or err > PARITY_ATOL:
        raise ExportError(f"ONNX output differs from torch by {err:.3g} (> {PARITY_ATOL})")
