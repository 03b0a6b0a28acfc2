"""LiteRT (.tflite) export of a trained network: what an Android app ships.

Optional: ``pip install "hwnas[litert]"`` adds litert-torch (the converter, PyTorch to .tflite
without TensorFlow) and ai-edge-litert (the interpreter, XNNPACK on CPU). Without it,
``available()`` is False and ``require()`` raises one ExportError that says how to get it.

- ``model.tflite``: fp32, input float32 NCHW like the ONNX file.
- ``model.int8.tflite``: PT2E static int8 (per-channel symmetric weights, activations
  calibrated on training images), input and output int8: the card gives the scale and zero
  point. Blocks trained below 8 bits run at 8 bits, as on XNNPACK (which has no 4/6-bit kernels).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from nas.errors import ExportError

__all__ = ["available", "require", "export_tflite", "tflite_accuracy", "tflite_accuracy_batches", "tflite_latency",
           "tflite_io", "tflite_runner", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "hwnas[litert]" adds model.tflite and model.int8.tflite (then `nas export RUN`)'


def available() -> bool:
    try:
        with _quiet_stderr():  # importing them logs native-library notes on stderr
            import ai_edge_litert.interpreter  # noqa: F401

            _litert_torch()
    except Exception:  # noqa: BLE001 - a broken optional install counts as absent
        return False
    return True


def require() -> None:
    if not available():
        raise ExportError(f"LiteRT export needs the litert extra: {INSTALL_HINT}")


def _litert_torch():
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # its own progress lines
    import litert_torch

    return litert_torch


@contextlib.contextmanager
def _quiet_stderr():
    """The converter's C++ side logs INFO and warning lines straight to file descriptor 2; they
    would flood the CLI's one-line-per-problem output. Captured to a temporary file instead,
    whose error lines (if any) come back in the ExportError."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        captured: list[str] = []
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured += [ln for ln in tmp.read().decode("utf-8", "replace").splitlines()
                         if "error" in ln.lower()][-3:]


def _failed_op(exc: Exception) -> str:
    """The operator a conversion failed on, where the message names one."""
    msg = str(exc)
    m = re.search(r"(aten\.[A-Za-z0-9_.]+|tfl\.[A-Za-z0-9_]+|'[a-z_]+\.[A-Za-z0-9_.]+')", msg)
    first = msg.strip().splitlines()[0][:200] if msg.strip() else type(exc).__name__
    return f"operator {m.group(1)}: {first}" if m else first


def export_tflite(model: torch.nn.Module, path: str | os.PathLike, shape: list[int],
                  int8: bool = False, calibration: np.ndarray | None = None, seed: int = 0) -> Path:
    """Convert ``model`` (float, eval mode) at input ``shape`` (1, C, H, W) to ``path``.
    ``int8``: PT2E static quantization calibrated on ``calibration`` (N, C, H, W float32).

    The file depends on the weights and the images only: the network is converted from a copy
    in the default (contiguous) memory format, and torch runs on one thread meanwhile. A
    channels_last model (as trained) or another thread count sums the calibration activations
    in another order, which moves their observed ranges by a rounding error and with them the
    int8 scales: ``nas distill`` and ``nas export`` wrote different model.int8.tflite files from
    one model.pt (issue 25)."""
    require()
    path = Path(path)
    model = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))
    try:
        with torch.no_grad(), _quiet_stderr(), _one_thread():
            litert_torch = _litert_torch()
            if not int8:
                edge = litert_torch.convert(model, (x,))
            else:
                if calibration is None or len(calibration) == 0:
                    raise ExportError("int8 .tflite export needs calibration images")
                from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
                from litert_torch.quantize.quant_config import QuantConfig
                from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

                quantizer = PT2EQuantizer().set_global(
                    get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
                prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
                for img in calibration:
                    prepared(torch.from_numpy(np.ascontiguousarray(img[None], dtype=np.float32)))
                converted = convert_pt2e(prepared, fold_quantize=False)
                edge = litert_torch.convert(converted, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
            tmp = path.with_name(path.name + ".tmp")
            edge.export(str(tmp))
        os.replace(tmp, path)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - the converter raises many kinds; name the op
        raise ExportError(f"{path.name}: LiteRT conversion failed at {_failed_op(exc)}") from None
    return path


@contextlib.contextmanager
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _interpreter(path: str | os.PathLike, threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter

    with _quiet_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        it = Interpreter(model_path=str(path), num_threads=threads)
        it.allocate_tensors()
    return it


def tflite_io(path: str | os.PathLike) -> dict:
    """Input/output dtype, shape and (scale, zero point) of a .tflite file."""
    it = _interpreter(path)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    return {"input": {"dtype": np.dtype(i["dtype"]).name, "shape": [int(v) for v in i["shape"]],
                      "scale": float(i["quantization"][0]), "zero_point": int(i["quantization"][1])},
            "output": {"dtype": np.dtype(o["dtype"]).name, "scale": float(o["quantization"][0]),
                       "zero_point": int(o["quantization"][1])}}


def _feed(detail: dict, x: np.ndarray) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


def _out(detail: dict, y: np.ndarray) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * scale


def tflite_accuracy(path: str | os.PathLike, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a .tflite file in the LiteRT interpreter (XNNPACK, 1 thread), one
    image per invocation as on a phone. A dataset's split: ``tflite_accuracy_batches``."""
    return tflite_accuracy_batches(path, [(x, y)])


def tflite_accuracy_batches(path: str | os.PathLike, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """``tflite_accuracy`` over (float32 NCHW, labels) batches, such as ``Dataset.eval_batches``:
    one batch in memory at a time, one image per invocation."""
    it = _interpreter(path)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    hits = n = 0
    for x, y in batches:
        for k in range(len(y)):
            it.set_tensor(i["index"], _feed(i, x[k:k + 1]))
            it.invoke()
            hits += int(np.argmax(_out(o, it.get_tensor(o["index"]))) == y[k])
        n += len(y)
    return hits / max(1, n)


def tflite_runner(path: str | os.PathLike, threads: int = 1):
    """A function that runs one inference of a .tflite file in the LiteRT interpreter (XNNPACK,
    ``threads`` threads) on a seeded input (quantized to the file's input type when it takes
    int8): what the host-litert profile and its yardstick time."""
    it = _interpreter(path, threads)
    i = it.get_input_details()[0]
    x = np.random.default_rng(0).standard_normal(i["shape"]).astype(np.float32)
    it.set_tensor(i["index"], _feed(i, x))
    return it.invoke


def tflite_latency(path: str | os.PathLike, min_runs: int = 30, min_seconds: float = 0.4) -> float:
    """Median milliseconds of one invocation (XNNPACK, 1 thread) after warm-up."""
    it = _interpreter(path)
    i = it.get_input_details()[0]
    x = np.random.default_rng(0).standard_normal(i["shape"]).astype(np.float32)
    it.set_tensor(i["index"], _feed(i, x))
    for _ in range(3):
        it.invoke()
    times, t0 = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - t0 < min_seconds:
        t = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)
