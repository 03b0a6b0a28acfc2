"""Device profiles: ``device_profiles/<name>.yaml`` plus their tables.

A profile predicts a candidate's latency as the sum over ``candidate.ops()`` of the op's
latency (a table hit, else the estimator), followed by the profile's whole-network
calibration: ``scale * sum + per_op_ms * n_ops + offset_ms``. Bit widths the runtime does not
execute natively are priced at the width they fall back to (``bit_fallback``).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nas._paths import data_names, read_yaml, resolve_yaml
from nas.candidate import FLOAT_BITS, Candidate, OpSpec
from nas.errors import NasError
from nas.latency.estimator import Estimator

__all__ = ["DeviceProfile", "Calibration", "OpLatency", "load_device", "device_names",
           "DeviceError", "UnknownDeviceError", "PROVENANCES"]

PROVENANCES = ("measured", "imported", "estimated")


class DeviceError(NasError, ValueError):
    """A device profile or its table is malformed, or cannot price an op."""


class UnknownDeviceError(DeviceError, KeyError):
    def __init__(self, name: str, valid: list[str]):
        self.name, self.valid = name, valid
        super().__init__(f"unknown device {name!r}; valid: {', '.join(valid)} "
                         f"(or a path to a profile YAML)")

    def __str__(self) -> str:
        return self.args[0]


KINDS = ("conv", "mbconv", "shuffle", "shuffle_x", "maxpool", "gap", "linear")


@dataclass
class Calibration:
    """Whole-network correction of isolated op latencies:

    ``sum(kind_scale[op.kind] * op_ms) + per_op_ms * n_ops + per_melem_ms * boundary_melems
    + offset_ms``

    A scale per op kind absorbs what the runtime does differently inside a network (warm or
    cold caches, fusions across ops); ``n_ops`` models the per-run overhead an isolated timing
    pays once per op but a network once; ``boundary_melems`` (millions of elements entering
    and leaving each op) models layout changes and re-quantization at op boundaries that the
    runtime removes between consecutive ops.
    """

    scale: float = 1.0  # for kinds without their own scale
    kind_scale: dict[str, float] = field(default_factory=dict)
    per_op_ms: float = 0.0
    per_melem_ms: float = 0.0
    offset_ms: float = 0.0
    source: str = "none"

    def __post_init__(self) -> None:
        nums = {"scale": self.scale, "per_op_ms": self.per_op_ms, "per_melem_ms": self.per_melem_ms,
                "offset_ms": self.offset_ms}
        if not isinstance(self.kind_scale, dict):
            raise DeviceError(f"calibration.kind_scale: expected a mapping, got {self.kind_scale!r}")
        nums.update({f"kind_scale.{k}": v for k, v in self.kind_scale.items()})
        for k, v in nums.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise DeviceError(f"calibration.{k}: expected a finite number, got {v!r}")

    def op_scale(self, kind: str) -> float:
        return self.kind_scale.get(kind, self.scale)

    def apply(self, scaled_sum_ms: float, n_ops: int, boundary_melems: float = 0.0) -> float:
        """``scaled_sum_ms`` is the sum of op latencies already multiplied by ``op_scale``."""
        raw = scaled_sum_ms + self.per_op_ms * n_ops + self.per_melem_ms * boundary_melems + self.offset_ms
        return max(raw, 0.05 * scaled_sum_ms)  # never let a correction term drive it to zero

    @classmethod
    def fit(cls, kind_sums: list[dict[str, float]], n_ops, melems, measured, source: str) -> "Calibration":
        """Least squares on relative error. Kind scales are kept non-negative (a kind cannot
        take negative time); the per-op, per-element and offset terms may take either sign
        (an isolated timing pays overheads a network does not). Chosen over a single global
        scale by leave-one-out cross-validation within the calibration sample (BENCHMARKS.md)."""
        from nas.latency.estimator import nnls

        y = np.asarray(measured, float)
        kinds = [k for k in KINDS if any(d.get(k, 0) > 0 for d in kind_sums)]
        K = np.array([[d.get(k, 0.0) for k in kinds] for d in kind_sums]).reshape(len(y), len(kinds))
        F = np.column_stack([n_ops, melems, np.ones(len(y))])
        A = np.column_stack([K, F, -F]) / y[:, None]  # free-sign terms as a difference of two
        c = nnls(A, np.ones(len(y)))
        nk = len(kinds)
        free = c[nk:nk + 3] - c[nk + 3:]
        return cls(scale=1.0, kind_scale={k: float(v) for k, v in zip(kinds, c[:nk])},
                   per_op_ms=float(free[0]), per_melem_ms=float(free[1]), offset_ms=float(free[2]),
                   source=source)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "kind_scale": dict(self.kind_scale), "per_op_ms": self.per_op_ms,
                "per_melem_ms": self.per_melem_ms, "offset_ms": self.offset_ms, "source": self.source}


@dataclass(frozen=True)
class OpLatency:
    op: OpSpec
    exec_bits: int
    ms: float
    source: str  # "table" | "estimate"


@dataclass
class DeviceProfile:
    name: str
    description: str
    provenance: str
    source: str
    runtime: str
    threads: int
    native_bits: tuple[int, ...]
    bit_fallback: dict[int, int]
    table: dict[str, float]
    estimator: Estimator
    calibration: dict[str, Calibration]  # "f32" and "i8"
    validation: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    measure_missing: Callable[[list[tuple[OpSpec, int]]], dict[str, float]] | None = None
    _block_cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------------------ prediction
    @property
    def is_estimated(self) -> bool:
        return self.provenance == "estimated"

    @property
    def label(self) -> str:
        """Name with provenance, for every report that shows a number from this profile."""
        return f"{self.name} ({self.provenance}, {self.runtime}, {self.threads} thread" \
               f"{'s' if self.threads != 1 else ''})"

    def exec_bits(self, bits: int) -> int:
        if bits in self.native_bits:
            return bits
        if bits in self.bit_fallback:
            return self.bit_fallback[bits]
        raise DeviceError(f"device {self.name} cannot execute {bits}-bit ops "
                          f"(native: {', '.join(map(str, self.native_bits))})")

    def table_key(self, op: OpSpec, exec_bits: int) -> str:
        return op.key if exec_bits == op.bits else _with_bits(op, exec_bits).key

    def op_latency(self, op: OpSpec) -> OpLatency:
        eb = self.exec_bits(op.bits)
        key = self.table_key(op, eb)
        if key in self.table:
            return OpLatency(op, eb, self.table[key], "table")
        ms = self.estimator.predict(op, eb)
        if not np.isfinite(ms) or ms <= 0:
            raise DeviceError(f"device {self.name}: op {key} is neither in the table nor estimable")
        return OpLatency(op, eb, ms, "estimate")

    def predict_from_breakdown(self, candidate: Candidate, rows: list[OpLatency]) -> float:
        cal = self.calibration_for(candidate)
        return cal.apply(sum(cal.op_scale(r.op.kind) * r.ms for r in rows), len(rows),
                         sum(boundary_melems(r.op) for r in rows))

    def uncalibrated_parts(self, candidate: Candidate, num_classes: int = 1000):
        """({op kind: summed ms}, number of ops, boundary Melems), for fitting calibrations."""
        rows = self.breakdown(candidate, num_classes)
        sums: dict[str, float] = {}
        for r in rows:
            sums[r.op.kind] = sums.get(r.op.kind, 0.0) + r.ms
        return sums, len(rows), sum(boundary_melems(r.op) for r in rows)

    def breakdown(self, candidate: Candidate, num_classes: int = 1000) -> list[OpLatency]:
        ops = candidate.ops(num_classes=num_classes)
        self._ensure_measured(ops)
        return [self.op_latency(op) for op in ops]

    def calibration_for(self, candidate: Candidate) -> Calibration:
        return self.calibration["i8" if candidate.is_quantized else "f32"]

    def latency_ms(self, candidate: Candidate, num_classes: int = 1000) -> float:
        """Predicted end-to-end latency in milliseconds."""
        total, n, melems, quantized = self._op_sum(candidate, num_classes)
        return self.calibration["i8" if quantized else "f32"].apply(total, n, melems)

    def _op_sum(self, cand: Candidate, num_classes: int) -> tuple[float, int, float, bool]:
        # Fast path: a block's op depends only on (skeleton, resolution, width, stage,
        # first-in-stage, block genes); edges only on (skeleton, resolution, width,
        # quantized). Both are cached per context, so a warm profile prices a candidate with
        # one dictionary lookup per block.
        ctx = (cand.space, cand.skeleton, cand.resolution, cand.width, num_classes)
        blocks = self._block_cache.get(ctx)
        if blocks is not None:
            tf, ti, n, el, quantized = 0.0, 0.0, 0, 0.0, False
            try:
                for si, stage in enumerate(cand.stages):
                    first = True
                    for b in stage:
                        f, i, cnt, e = blocks[(si, first, b)]
                        tf += f
                        ti += i
                        n += cnt
                        el += e
                        first = False
                        quantized = quantized or b.bits < FLOAT_BITS
                ef, ei, ecnt, ee = blocks[quantized]
                return (ti + ei if quantized else tf + ef), n + ecnt, el + ee, quantized
            except KeyError:
                pass
        self._fill_cache(cand, num_classes, ctx)
        return self._op_sum(cand, num_classes)

    def _fill_cache(self, cand: Candidate, num_classes: int, ctx: tuple) -> None:
        plan = cand.space_obj().plan(cand, num_classes=num_classes)
        self._ensure_measured([op for _, op in plan])
        cf, ci = self.calibration["f32"], self.calibration["i8"]

        def entry(ops: list[OpSpec]) -> tuple[float, float, int, float]:
            lat = [(op.kind, self.op_latency(op).ms) for op in ops]
            return (sum(cf.op_scale(k) * ms for k, ms in lat), sum(ci.op_scale(k) * ms for k, ms in lat),
                    len(ops), sum(boundary_melems(op) for op in ops))

        per_block: dict[tuple[int, int], list[OpSpec]] = {}
        for tag, op in plan:
            if tag is not None:
                per_block.setdefault(tag, []).append(op)
        with self._lock:
            blocks = self._block_cache.setdefault(ctx, {})
            blocks[cand.is_quantized] = entry([op for tag, op in plan if tag is None])
            for si, stage in enumerate(cand.stages):
                for bi, b in enumerate(stage):
                    # identity skips have no op: an empty entry
                    blocks[(si, bi == 0, b)] = entry(per_block.get((si, bi), []))

    def _ensure_measured(self, ops: list[OpSpec]) -> None:
        if self.measure_missing is None:
            return
        missing = []
        for op in ops:
            eb = self.exec_bits(op.bits)
            if self.table_key(op, eb) not in self.table:
                missing.append((op, eb))
        if missing:
            self.table.update(self.measure_missing(missing))

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "provenance": self.provenance, "source": self.source,
                "runtime": self.runtime, "threads": self.threads,
                "native_bits": list(self.native_bits),
                "bit_fallback": {str(k): v for k, v in self.bit_fallback.items()},
                "table_entries": len(self.table), "validation": self.validation}


def boundary_melems(op: OpSpec) -> float:
    """Millions of elements entering and leaving ``op``."""
    ho, wo = op.out_hw
    return (op.h * op.w * op.cin + ho * wo * op.cout) / 1e6


def _with_bits(op: OpSpec, bits: int) -> OpSpec:
    from dataclasses import replace

    return replace(op, bits=bits)


# --------------------------------------------------------------------------- loading

_cache: dict[str, DeviceProfile] = {}
_cache_lock = threading.Lock()


def device_names() -> list[str]:
    return data_names("device_profiles")


def load_device(name_or_path: str | Path) -> DeviceProfile:
    """A built-in profile by name (``nas devices`` lists them) or a profile YAML by path."""
    text = str(name_or_path)
    with _cache_lock:
        if text in _cache:
            return _cache[text]
    path = resolve_yaml("device_profiles", text,
                        lambda p: DeviceError(f"device profile file not found: {p}"), UnknownDeviceError)
    try:
        profile = _read_profile(path)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, ArithmeticError) as exc:
        if isinstance(exc, NasError):
            raise
        # a backstop: the checks above name the field; anything they miss is still one line
        raise DeviceError(f"{path}: malformed profile ({type(exc).__name__}: {exc})") from None
    with _cache_lock:
        _cache[text] = profile
    return profile


def _yaml(path: Path) -> Any:
    return read_yaml(path, DeviceError)


def _need(d: Any, key: str, typ, path: Path, where: str = "top level", default: Any = ...) -> Any:
    if not isinstance(d, dict):
        raise DeviceError(f"{path}: {where}: expected a mapping")
    if key not in d:
        if default is ...:
            raise DeviceError(f"{path}: {where}: missing field {key!r}")
        return default
    v = d[key]
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, typ) or (typ in (int, float) and isinstance(v, bool)):
        raise DeviceError(f"{path}: {where}.{key}: expected {getattr(typ, '__name__', typ)}, got {v!r}")
    return v


def _read_profile(path: Path) -> DeviceProfile:
    raw = _yaml(path)
    if not isinstance(raw, dict):
        raise DeviceError(f"{path}: top level: expected a mapping")
    name = _need(raw, "name", str, path)
    provenance = _need(raw, "provenance", str, path)
    if provenance not in PROVENANCES:
        raise DeviceError(f"{path}: provenance: {provenance!r} is not one of {', '.join(PROVENANCES)}")
    native = tuple(_need(raw, "native_bits", list, path))
    fallback = {int(k): int(v) for k, v in _need(raw, "bit_fallback", dict, path, default={}).items()}
    for b in list(native) + list(fallback.values()):
        if not isinstance(b, int) or not 1 <= b <= 32:
            raise DeviceError(f"{path}: native_bits/bit_fallback: {b!r} is not a bit width")
    est_raw = _need(raw, "estimator", dict, path)
    table: dict[str, float] = {}
    validation = _need(raw, "validation", dict, path, default={}) or {}
    try:
        calib = {k: Calibration(**v) for k, v in
                 (_need(raw, "calibration", dict, path, default={}) or {}).items()}
    except TypeError as exc:
        raise DeviceError(f"{path}: calibration: {exc}") from None
    measure = None
    kind = _need(raw, "kind", str, path, default="static")
    if kind == "host":
        from nas.latency import host

        table, calib_h, validation_h, measure = host.load_host_state()
        calib.update(calib_h)
        validation = validation_h or validation
        estimator = host.host_estimator(table, est_raw)
    elif "from_hardware" in est_raw:
        hw = _need(est_raw, "from_hardware", dict, path, "estimator")
        for k, v in hw.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise DeviceError(f"{path}: estimator.from_hardware.{k}: expected a positive "
                                  f"number, got {v!r} (YAML needs a signed exponent: 45.6e+9)")
        try:
            estimator = Estimator.from_hardware(**hw)
        except TypeError as exc:
            raise DeviceError(f"{path}: estimator.from_hardware: {exc}") from None
    elif "fit_lut" in est_raw:
        from nas.latency.imported import lut_profile_parts

        lut_path = path.parent / _need(est_raw, "fit_lut", str, path, "estimator")
        table, estimator, validation = lut_profile_parts(lut_path, _need(est_raw, "format", str, path, "estimator"))
    elif "coef" in est_raw:
        estimator = Estimator({str(k): float(v) for k, v in est_raw["coef"].items()})
    else:
        raise DeviceError(f"{path}: estimator: needs 'from_hardware', 'fit_lut' or 'coef'")
    if "table" in raw and raw["table"]:
        table.update(read_table(path.parent / str(raw["table"])))
    for k in ("f32", "i8"):
        calib.setdefault(k, Calibration())
    return DeviceProfile(
        name=name, description=str(_need(raw, "description", str, path, default="")).strip(),
        provenance=provenance, source=str(_need(raw, "source", str, path)).strip(),
        runtime=_need(raw, "runtime", str, path), threads=_need(raw, "threads", int, path, default=1),
        native_bits=native, bit_fallback=fallback, table=table, estimator=estimator,
        calibration=calib, validation=validation, path=path, measure_missing=measure)


def read_table(path: Path) -> dict[str, float]:
    """A latency table: JSON or YAML mapping of op key -> milliseconds (> 0)."""
    if not path.is_file():
        raise DeviceError(f"latency table not found: {path}")
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DeviceError(f"{path}: line {exc.lineno}: malformed JSON: {exc.msg}") from None
    else:
        raw = _yaml(path)
    if not isinstance(raw, dict):
        raise DeviceError(f"{path}: expected a mapping of op key to milliseconds")
    out = {}
    for k, v in raw.items():
        ms = v.get("ms") if isinstance(v, dict) else v
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not np.isfinite(ms) or ms <= 0:
            raise DeviceError(f"{path}: key {k!r}: latency must be a positive number, got {ms!r}")
        out[str(k)] = float(ms)
    return out
