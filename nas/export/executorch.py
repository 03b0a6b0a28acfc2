"""ExecuTorch (.pte) export of a trained network: what a PyTorch-native Android or iOS app ships
(ExecuTorch is PyTorch Mobile's successor).

Optional: ``pip install "hwnas[executorch]"`` adds executorch (the exporter and its Python
runtime, XNNPACK delegate; it installs beside torch 2.13 without replacing it, README's export
section). Without it, ``available()`` is False and ``require()`` raises one ExportError that says
how to get it.

- ``model.pte``: fp32, lowered to the XNNPACK delegate; input float32 NCHW like the ONNX file.
- ``model.int8.pte``: PT2E static int8 with the XNNPACK quantizer (per-channel symmetric
  weights, activations calibrated on training images), lowered to XNNPACK; input and output
  stay float32 NCHW (the quantize and dequantize sit inside the program). Blocks trained below
  8 bits run at 8 bits, as on XNNPACK (which has no 4/6-bit kernels).
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from nas.errors import ExportError
from nas.export.litert import _failed_op, _one_thread, _quiet_stderr

__all__ = ["available", "require", "export_pte", "pte_accuracy", "pte_accuracy_batches", "pte_latency",
           "pte_delegated", "runtime_threads", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "hwnas[executorch]" adds model.pte and model.int8.pte (then `nas export RUN --format pte`)'


def available() -> bool:
    try:
        with _quiet_stderr():  # the runtime's native side logs CPU-probing lines on stderr
            import executorch.exir  # noqa: F401
            import executorch.runtime  # noqa: F401
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken optional install counts as absent
        return False
    return True


def require() -> None:
    if not available():
        raise ExportError(f"ExecuTorch export needs the executorch extra: {INSTALL_HINT}")


def export_pte(model: torch.nn.Module, path: str | os.PathLike, shape: list[int],
               int8: bool = False, calibration: np.ndarray | None = None, seed: int = 0) -> Path:
    """Lower ``model`` (float, eval mode) at input ``shape`` (1, C, H, W) to the XNNPACK delegate
    and write the ExecuTorch program to ``path``. ``int8``: PT2E static quantization with the
    XNNPACK quantizer, calibrated on ``calibration`` (N, C, H, W float32).

    As for .tflite, the file depends on the weights and the images only: the network is lowered
    from a contiguous copy with torch on one thread (issue 25)."""
    require()
    path = Path(path)
    model = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))
    tmp = path.with_name(path.name + ".tmp")
    try:
        with torch.no_grad(), _quiet_stderr(), _one_thread():
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower

            if int8:
                if calibration is None or len(calibration) == 0:
                    raise ExportError("int8 .pte export needs calibration images")
                from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                    XNNPACKQuantizer,
                    get_symmetric_quantization_config,
                )
                from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

                quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
                prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
                for img in calibration:
                    prepared(torch.from_numpy(np.ascontiguousarray(img[None], dtype=np.float32)))
                model = convert_pt2e(prepared)
            program = to_edge_transform_and_lower(torch.export.export(model, (x,)),
                                                  partitioner=[XnnpackPartitioner()]).to_executorch()
            tmp.write_bytes(program.buffer)
        os.replace(tmp, path)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - export and lowering raise many kinds; name the op
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{path.name}: ExecuTorch export failed at {_failed_op(exc)}") from None
    return path


def _method(path: str | os.PathLike):
    """The program's forward method, with the runtime's thread pool at one thread (as the
    LiteRT and onnxruntime figures on the card) where this executorch lets it be set."""
    from executorch.runtime import Runtime

    with _quiet_stderr():
        runtime_threads(1)
        return Runtime.get().load_program(Path(path)).load_method("forward")


def runtime_threads(n: int | None = None) -> int | None:
    """The runtime's thread-pool size, first set to ``n`` if given; None where this executorch
    does not expose it (its thread-pool calls are marked experimental)."""
    try:
        from executorch.extension.pybindings import portable_lib
    except Exception:  # noqa: BLE001 - the pool is an optional detail of the runtime
        return None
    try:
        if n is not None:
            portable_lib._unsafe_reset_threadpool(int(n))
        return int(portable_lib._threadpool_get_thread_count())
    except Exception:  # noqa: BLE001
        return None


def pte_delegated(path: str | os.PathLike) -> bool:
    """Whether the program hands its work to the XNNPACK delegate (the file names the backend)."""
    return b"XnnpackBackend" in Path(path).read_bytes()


def pte_accuracy(path: str | os.PathLike, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a .pte file in ExecuTorch's runtime (XNNPACK), one image per call as
    on a phone. A dataset's split: ``pte_accuracy_batches``."""
    return pte_accuracy_batches(path, [(x, y)])


def pte_accuracy_batches(path: str | os.PathLike, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """``pte_accuracy`` over (float32 NCHW, labels) batches, such as ``Dataset.eval_batches``:
    one batch in memory at a time, one image per call."""
    method = _method(path)
    hits = n = 0
    for x, y in batches:
        for k in range(len(y)):
            out = method.execute([torch.from_numpy(np.ascontiguousarray(x[k:k + 1], dtype=np.float32))])[0]
            hits += int(int(torch.as_tensor(out).argmax()) == int(y[k]))
        n += len(y)
    return hits / max(1, n)


def pte_latency(path: str | os.PathLike, shape: list[int], min_runs: int = 30, min_seconds: float = 0.4) -> float:
    """Median milliseconds of one call in ExecuTorch's runtime after warm-up."""
    method = _method(path)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    for _ in range(3):
        method.execute([x])
    times, t0 = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - t0 < min_seconds:
        t = time.perf_counter()
        method.execute([x])
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)
