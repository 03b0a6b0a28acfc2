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
                int8: bool = False, check: bool = True, seed: int = 0) -> Path:
    """Write ``model`` as ONNX (opset 17, input ``input`` NCHW float32 with a dynamic batch,
    output ``logits``) and, with ``check``, verify in onnxruntime that its outputs match torch
    within 1e-4 on a seeded random batch. The file is written atomically.

    ``int8`` (static QDQ quantization) is not available yet: it arrives with the device
    profiles, which share its quantization path; asking for it raises ExportError.
    """
    if int8:
        raise ExportError("int8 ONNX export is not implemented yet (it comes with the "
                          "host device profile's static QDQ quantization)")
    path = Path(path)
    res = resolution or getattr(model, "resolution", None)
    if not res:
        raise ExportError("export_onnx needs a resolution (the model has none)")
    in_ch = getattr(model, "in_channels", 3)
    model = model.eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, in_ch, res, res, generator=gen)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # The TorchScript exporter: ~15x faster than the dynamo one for these graphs, which
            # matters when a latency table exports thousands of op models.
            torch.onnx.export(model, (x,), tmp, opset_version=OPSET, dynamo=False,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        if check:
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
