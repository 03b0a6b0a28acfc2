"""The host profiles: latencies measured on this machine, in one of two runtimes.

- ``host`` (runtime ``onnxruntime``): each OpSpec exported as a tiny ONNX model (fp32, or int8
  by onnxruntime's static QDQ quantization, the same path as ``export_onnx(..., int8=True)``)
  and timed in onnxruntime's CPU provider.
- ``host-litert`` (runtime ``litert``): each OpSpec exported as a tiny ``.tflite`` model with
  litert-torch (fp32, or PT2E static int8: the same ``export_tflite`` as a winner's
  ``model.int8.tflite`` and the onboarding path's op models) and timed in the LiteRT
  interpreter (XNNPACK), as a phone runs it. Needs the litert extra.

Both time with a fixed thread count (1 by default, ``HWNAS_HOST_THREADS``). Timings are cached
on disk per runtime, CPU model, runtime version and thread count (``$HWNAS_CACHE`` or
``~/.cache/hwnas``), so a table grows as searches meet new ops and survives between runs;
writes are atomic. Ops are timed lazily: a profile measures the ops of a candidate it prices
the first time it meets them.

On these runtimes 4- and 6-bit blocks execute on int8 kernels: they are timed as int8 (their
bytes still count at their own width).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from nas._paths import atomic_write
from nas.errors import DeviceError
from nas.export import export_module, ort_session, quantize_int8, strip_boundary_qdq
from nas.latency._calibration import Calibration
from nas.latency._estimator import Estimator, op_features, select_terms
from nas.latency._yardstick import YARDSTICK_STAT, time_interleaved
from nas.models import build_model, build_op
from nas.space import FLOAT_BITS, Candidate, OpSpec

__all__ = ["RUNTIMES", "LITERT_HINT", "cache_dir", "measure_ops", "measure_candidate", "network_runner",
           "load_host_state", "save_calibration", "host_estimator", "input_for", "require_runtime", "THREADS",
           "measure_op"]

THREADS = int(os.environ.get("HWNAS_HOST_THREADS", "1"))
RUNTIMES = ("onnxruntime", "litert")
LITERT_HINT = 'pip install "hwnas[litert]"'
Progress = Callable[[int, int], None]
Runner = Callable[[], object]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise DeviceError(f"host runtime {runtime!r}: choose {' or '.join(RUNTIMES)}")


def require_runtime(runtime: str) -> None:
    """Raise one DeviceError naming the extra when ``runtime`` cannot run here."""
    _check_runtime(runtime)
    if runtime == "litert":
        from nas.export import litert

        if not litert.available():
            raise DeviceError(f"the host-litert profile times ops in LiteRT and needs the litert extra "
                              f"(ai-edge-litert and litert-torch): {LITERT_HINT}")


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def cache_dir(runtime: str = "onnxruntime") -> Path:
    """Where ``runtime``'s op table and calibration live: one folder per runtime, CPU model,
    runtime version and thread count (LiteRT's also by the converter's version, which makes the
    op models)."""
    _check_runtime(runtime)
    root = Path(os.environ.get("HWNAS_CACHE", Path.home() / ".cache" / "hwnas"))
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", _cpu_model()).strip("-")
    if runtime == "litert":
        return root / "host-litert" / (f"{slug}-litert{_dist_version('ai-edge-litert')}"
                                       f"-lt{_dist_version('litert-torch')}-t{THREADS}")
    import onnxruntime as ort

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


def _read_times(path: Path) -> dict[str, float]:
    """A cache of milliseconds ({key: ms}), every value a number, or DeviceError."""
    try:
        return {k: float(v) for k, v in _read_json(path).items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise DeviceError(f"host latency cache {path} holds a value that is not milliseconds ({exc}); "
                          f"delete it to re-measure") from None


def load_host_state(runtime: str = "onnxruntime"):
    """(table, calibration, validation, the function that measures missing ops) of ``runtime``."""
    require_runtime(runtime)
    d = cache_dir(runtime)
    table = _read_times(d / "table.json")
    state = _read_json(d / "calibration.json")
    try:
        calib = {k: Calibration(**v) for k, v in state.get("calibration", {}).items()}
    except TypeError:  # written by an older version: recalibrate
        calib = {}
    return table, calib, state.get("validation", {}), functools.partial(measure_ops, runtime=runtime)


def save_calibration(calib: dict[str, Calibration], validation: dict | None = None,
                     runtime: str = "onnxruntime") -> Path:
    path = cache_dir(runtime) / "calibration.json"
    state = _read_json(path)
    state["calibration"] = {k: c.to_dict() for k, c in calib.items()}
    if validation is not None:
        state["validation"] = validation
    _write_json(path, state)
    return path


def host_estimator(table: dict[str, float], est_raw: dict, runtime: str = "onnxruntime") -> Estimator:
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
            raise DeviceError(f"host latency cache {cache_dir(runtime)}: bad op key {key!r}; "
                              f"delete the cache to re-measure") from None
        rows.append(op_features(op))
        ys.append(ms)
    X, y = np.array(rows), np.array(ys)
    return Estimator.fit(select_terms(X, y, prior)[0], y, prior=prior)


# --------------------------------------------------------------------------- timing

def input_for(op: OpSpec, batch: int = 1) -> np.ndarray:
    """A seeded input of the op's shape (op models are exported and timed on it)."""
    rng = np.random.default_rng(0)
    if op.kind == "linear":
        return rng.standard_normal((batch, op.cin)).astype(np.float32)
    return rng.standard_normal((batch, op.cin, op.h, op.w)).astype(np.float32)


def _fastest(run: Runner, min_runs: int = 20, min_seconds: float = 0.2, max_runs: int = 5000) -> float:
    """Fastest of repeated runs after warm-up, milliseconds: how an op alone is timed (the same
    statistic as ``nas.export.time_session``; an op's timing is short, so a burst of noise
    rarely covers all of its runs)."""
    for _ in range(3):
        run()
    best, runs, start = float("inf"), 0, time.perf_counter()
    while runs < max_runs and (runs < min_runs or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return best * 1e3


def _calibration_inputs(shape: tuple[int, ...], n: int = 4) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, *shape[1:])).astype(np.float32)


def _ort_runner(module: torch.nn.Module, x: np.ndarray, int8: bool, workdir: Path, stem: str,
                strip_qdq: bool) -> Runner:
    fp32 = workdir / f"{stem}.onnx"
    export_module(module, x, fp32)
    path, feed = fp32, {"input": x}
    if int8:
        rng = np.random.default_rng(1)
        calib = [rng.standard_normal(x.shape).astype(np.float32) for _ in range(4)]
        path = quantize_int8(fp32, workdir / f"{stem}.int8.onnx", calib)
        feeds = strip_boundary_qdq(path) if strip_qdq else {}
        if feeds:  # an op alone: its input arrives quantized, as from the op before it
            (name, dtype), = feeds.items()
            feed = {name: rng.integers(0, 255 if dtype == np.uint8 else 127, size=x.shape).astype(dtype)}
    sess = ort_session(str(path), threads=THREADS)
    return functools.partial(sess.run, None, feed)


def _litert_runner(module: torch.nn.Module, x: np.ndarray, int8: bool, workdir: Path, stem: str) -> Runner:
    from nas.export import litert

    path = workdir / f"{stem}{'.int8' if int8 else ''}.tflite"
    litert.export_tflite(module.eval(), path, list(x.shape), int8=int8,
                         calibration=_calibration_inputs(x.shape) if int8 else None)
    return litert.tflite_runner(path, threads=THREADS)


def op_runner(op: OpSpec | list[OpSpec], exec_bits: int, workdir: Path, runtime: str = "onnxruntime") -> Runner:
    """One inference of ``op`` alone, exported for ``runtime`` at ``exec_bits``; a list of
    consecutive ops (each one's output the next one's input) runs as one model, joined as inside
    a network (int8: no Quantize/Dequantize between them, the chain's own boundary stripped)."""
    ops = op if isinstance(op, list) else [op]
    torch.manual_seed(0)
    module = build_op(ops[0]) if len(ops) == 1 else torch.nn.Sequential(*(build_op(o) for o in ops))
    x = input_for(ops[0])
    int8 = exec_bits < FLOAT_BITS
    if runtime == "litert":
        return _litert_runner(module, x, int8, workdir, "op")
    return _ort_runner(module, x, int8, workdir, "op", strip_qdq=True)


def measure_op(op: OpSpec | list[OpSpec], exec_bits: int, workdir: Path, runtime: str = "onnxruntime") -> float:
    """Milliseconds of ``op`` (or a chain of consecutive ops) alone: the fastest of repeated runs."""
    return _fastest(op_runner(op, exec_bits, workdir, runtime))


def measure_ops(ops: list[tuple[OpSpec, int]], progress: Progress | None = None,
                save_every: int = 25, runtime: str = "onnxruntime") -> dict[str, float]:
    """Time every (op, executed bits) not yet in ``runtime``'s cache; returns {table key: ms} for
    all. The caller's torch thread count is restored afterwards."""
    require_runtime(runtime)
    specs = [op if op.bits == eb else replace(op, bits=eb) for op, eb in ops]
    table = time_into_cache(cache_dir(runtime) / "table.json", {s.key: (s, s.bits) for s in specs}, runtime,
                            progress, save_every, prefix="hwnas-op-")
    return {s.key: table[s.key] for s in specs}


def time_into_cache(path: Path, items: dict[str, tuple[OpSpec | list[OpSpec], int]], runtime: str,
                    progress: Progress | None = None, save_every: int = 25,
                    prefix: str = "hwnas-op-") -> dict[str, float]:
    """The one timing loop of the host caches: ``measure_op`` (one op, or a pair of ops as one
    model) for every key of ``items`` not yet in the JSON cache at ``path``, saved every
    ``save_every`` and at the end (re-read first: another process may have added entries
    meanwhile), at THREADS torch threads (the caller's count restored). Returns the whole
    cache, with the new timings."""
    cache = _read_times(path)
    todo = [(k, v) for k, v in items.items() if k not in cache]
    out: dict[str, float] = {}
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            for i, (key, (what, bits)) in enumerate(todo, start=1):
                out[key] = measure_op(what, bits, Path(tmp), runtime)
                if progress:
                    progress(i, len(todo))
                if i % save_every == 0 or i == len(todo):
                    cache = _read_times(path)
                    cache.update(out)
                    _write_json(path, cache)
    finally:
        torch.set_num_threads(prev_threads)
    cache.update(out)
    return cache


def network_runner(cand: Candidate, int8: bool, workdir: Path, num_classes: int = 1000,
                   runtime: str = "onnxruntime", stem: str = "net") -> Runner:
    """One inference of the whole network, exported for ``runtime`` (ONNX, int8 by static QDQ;
    or .tflite, int8 by PT2E as a winner's model.int8.tflite) into ``workdir/stem.*``."""
    require_runtime(runtime)
    torch.manual_seed(0)
    model = build_model(cand, num_classes).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, cand.resolution, cand.resolution)).astype(np.float32)
    prev = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        if runtime == "litert":
            return _litert_runner(model, x, int8, workdir, stem)
        return _ort_runner(model, x, int8, workdir, stem, strip_qdq=False)
    finally:
        torch.set_num_threads(prev)


def measure_candidate(cand: Candidate, int8: bool, workdir: Path, num_classes: int = 1000,
                      runtime: str = "onnxruntime") -> float:
    """End-to-end latency of the whole network in ``runtime``, milliseconds: the yardstick's
    statistic (``YARDSTICK_STAT``) of interleaved rounds (of one network, here)."""
    run = network_runner(cand, int8, workdir, num_classes, runtime)
    return time_interleaved([run])[0][YARDSTICK_STAT]
