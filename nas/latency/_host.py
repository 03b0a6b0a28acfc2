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
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from nas._paths import atomic_write
from nas.errors import DeviceError
from nas.export import export_module, ort_session, quantize_int8, strip_boundary_qdq, time_session
from nas.latency._calibration import Calibration
from nas.latency._estimator import Estimator, op_features
from nas.models import build_model, build_op
from nas.space import FLOAT_BITS, Candidate, OpSpec

__all__ = ["cache_dir", "measure_ops", "measure_candidate", "load_host_state", "save_calibration",
           "host_estimator", "input_for", "THREADS"]

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

def _session(path):
    return ort_session(path, threads=THREADS)


def input_for(op: OpSpec, batch: int = 1) -> np.ndarray:
    """A seeded input of the op's shape (op models are exported and timed on it)."""
    rng = np.random.default_rng(0)
    if op.kind == "linear":
        return rng.standard_normal((batch, op.cin)).astype(np.float32)
    return rng.standard_normal((batch, op.cin, op.h, op.w)).astype(np.float32)


def measure_op(op: OpSpec, exec_bits: int, workdir: Path) -> float:
    torch.manual_seed(0)
    module = build_op(op)
    x = input_for(op)
    fp32 = workdir / "op.onnx"
    export_module(module, x, fp32)
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
    torch.manual_seed(0)
    model = build_model(cand, num_classes).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, cand.resolution, cand.resolution)).astype(np.float32)
    fp32 = workdir / "net.onnx"
    export_module(model, x, fp32)
    path = fp32
    if int8:
        rng = np.random.default_rng(1)
        calib = [rng.standard_normal(x.shape).astype(np.float32) for _ in range(4)]
        path = quantize_int8(fp32, workdir / "net.int8.onnx", calib)
    return time_session(_session(str(path)), {"input": x}, min_runs=20, min_seconds=0.4)
