"""Device profiles: ``device_profiles/<name>.yaml`` plus their tables.

A profile predicts a candidate's latency as the sum over ``candidate.ops()`` of the op's
latency (a table hit, else the estimator), followed by the profile's whole-network
calibration: ``scale * sum + per_op_ms * n_ops + offset_ms``. Bit widths the runtime does not
execute natively are priced at the width they fall back to (``bit_fallback``).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nas._paths import data_names, read_yaml, resolve_yaml
from nas._typecheck import expect
from nas.errors import DeviceError, NasError, UnknownDeviceError
from nas.latency._calibration import Calibration, boundary_melems
from nas.latency._estimator import Estimator
from nas.latency._host import host_estimator, load_host_state
from nas.latency._imported import lut_profile_parts
from nas.space import FLOAT_BITS, Candidate, OpSpec

__all__ = ["DeviceProfile", "OpLatency", "load_device", "device_names", "PROVENANCES"]

PROVENANCES = ("measured", "fitted", "imported", "estimated")


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
    fitted_for: dict[str, Any] = field(default_factory=dict)  # nas profile fit: what the timings covered
    measure_missing: Callable[[list[tuple[OpSpec, int]]], dict[str, float]] | None = None
    host_runtime: str | None = None  # a host profile's runtime: "onnxruntime" or "litert"
    _block_cache: dict = field(default_factory=dict, repr=False)
    _spaces: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __getstate__(self) -> dict:  # a lock does not pickle: a profile sent to a Ray task gets a new one
        d = dict(self.__dict__)
        d.pop("_lock", None)
        return d

    def __setstate__(self, d: dict) -> None:
        self.__dict__.update(d)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ prediction
    @property
    def is_estimated(self) -> bool:
        return self.provenance == "estimated"

    @property
    def is_uncalibrated(self) -> bool:
        """A host profile whose whole-network calibration has not been fitted yet (its prices
        are sums of ops timed alone): every output that shows its numbers says so."""
        return self.host_runtime is not None and any(
            self.calibration.get(p, Calibration()).source == "none" for p in ("f32", "i8"))

    @property
    def label(self) -> str:
        """Name with provenance, for every report that shows a number from this profile."""
        cal = ", uncalibrated" if self.is_uncalibrated else ""
        return f"{self.name} ({self.provenance}{cal}, {self.runtime}, {self.threads} thread" \
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

    @property
    def provenance_summary(self) -> str:
        """The provenance with what it covers, for ``nas devices``: a measured table that does
        not hold every op says the rest is estimated; a fit that saw one precision says so."""
        if self.provenance == "measured" and self.measure_missing is None:
            return f"measured ({len(self.table)} ops) + estimated (other ops)"
        if self.is_uncalibrated:
            return f"{self.provenance}, uncalibrated (sum of ops timed alone: `nas profile build --device " \
                   f"{self.name} --calibrate 12`)"
        seen = self.fitted_for.get("precisions")
        if self.provenance == "fitted" and seen is not None and len(seen) < 2:
            other = "int8" if "f32" in seen else "fp32"
            return f"fitted ({'fp32' if 'f32' in seen else 'int8'} only; {other} from the prior " \
                   f"{self.fitted_for.get('prior', '')})"
        if self.is_estimated and self.expected_error:
            return f"estimated, expected error {self.expected_error}"
        return self.provenance

    def coverage(self, candidate: Candidate, num_classes: int = 1000, in_channels: int = 3) -> tuple[int, int]:
        """(ops of ``candidate`` priced from the table, ops in all)."""
        rows = self.breakdown(candidate, num_classes, in_channels)
        return sum(r.source == "table" for r in rows), len(rows)

    def provenance_for(self, candidate: Candidate, num_classes: int = 1000, in_channels: int = 3) -> str:
        """Where this network's price comes from. A measured (or imported) profile's price is
        "measured" only when every op is a table entry; otherwise it says how many were:
        "measured (3 of 16 ops) + estimated (13)". A fitted profile's price for a precision its
        timings had none of is the prior's, and says so."""
        if self.provenance == "fitted":
            seen = self.fitted_for.get("precisions")
            prec = "i8" if candidate.is_quantized else "f32"
            if seen is not None and prec not in seen:
                prior = self.fitted_for.get("prior", "the prior")
                return (f"{self.fitted_for.get('prior_provenance', 'estimated')} (the prior {prior}: no "
                        f"{'int8' if prec == 'i8' else 'fp32'} network among the fitted timings)")
            return self.provenance
        if self.provenance not in ("measured", "imported"):
            return self.provenance
        n, m = self.coverage(candidate, num_classes, in_channels)
        return self.provenance if n == m else f"{self.provenance} ({n} of {m} ops) + estimated ({m - n})"

    def predict_from_breakdown(self, candidate: Candidate, rows: list[OpLatency]) -> float:
        cal = self.calibration_for(candidate)
        return cal.apply(sum(cal.op_scale(r.op.kind) * r.ms for r in rows), len(rows),
                         sum(boundary_melems(r.op) for r in rows))

    def uncalibrated_parts(self, candidate: Candidate, num_classes: int = 1000, in_channels: int = 3):
        """({op kind: summed ms}, number of ops, boundary Melems), for fitting calibrations."""
        rows = self.breakdown(candidate, num_classes, in_channels)
        sums: dict[str, float] = {}
        for r in rows:
            sums[r.op.kind] = sums.get(r.op.kind, 0.0) + r.ms
        return sums, len(rows), sum(boundary_melems(r.op) for r in rows)

    def breakdown(self, candidate: Candidate, num_classes: int = 1000, in_channels: int = 3) -> list[OpLatency]:
        ops = candidate.ops(num_classes=num_classes, in_channels=in_channels)
        self._ensure_measured(ops)
        return [self.op_latency(op) for op in ops]

    def calibration_for(self, candidate: Candidate) -> Calibration:
        return self.calibration["i8" if candidate.is_quantized else "f32"]

    def latency_ms(self, candidate: Candidate, num_classes: int = 1000, in_channels: int = 3) -> float:
        """Predicted end-to-end latency in milliseconds of ``candidate`` built for ``num_classes``
        outputs and ``in_channels`` input channels (1 for grayscale data)."""
        total, n, melems, quantized = self._op_sum(candidate, num_classes, in_channels)
        return self.calibration["i8" if quantized else "f32"].apply(total, n, melems)

    def _op_sum(self, cand: Candidate, num_classes: int, in_channels: int = 3) -> tuple[float, int, float, bool]:
        # Fast path: a block's op depends only on (skeleton, resolution, width, stage,
        # first-in-stage, block genes); edges only on (skeleton, resolution, width,
        # quantized). Both are cached per context, so a warm profile prices a candidate with
        # one dictionary lookup per block.
        # the space object, not its name: two spaces may share a name (a YAML copy of a built-in)
        space = cand.search_space
        self._spaces.setdefault(id(space), space)  # keeps the id from being reused
        ctx = (id(space), cand.skeleton, cand.resolution, cand.width, num_classes, in_channels)
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
        self._fill_cache(cand, num_classes, in_channels, ctx)
        return self._op_sum(cand, num_classes, in_channels)

    def _fill_cache(self, cand: Candidate, num_classes: int, in_channels: int, ctx: tuple) -> None:
        plan = cand.search_space.plan(cand, num_classes=num_classes, in_channels=in_channels)
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

    @property
    def expected_error(self) -> str | None:
        """The error bar of an estimated profile ("±12%"), from its ``validation.expected_error``
        (a cross-device check of the rules it was derived with), or None."""
        e = self.validation.get("expected_error")
        return f"±{e['mape_pct']:g}%" if e else None

    def validation_text(self) -> str:
        """How well this profile predicts, in one phrase (for ``nas devices`` and model cards)."""
        v = dict(self.validation)
        e = v.pop("expected_error", None)
        note = f"; {v['whole_network']}" if v.get("whole_network") else ""
        if e and (not v or set(v) == {"whole_network"}):
            return (f"expected error {self.expected_error} ({e['basis']}; median {e['median_signed_pct']:+g}%, "
                    f"worst {e['worst_pct']:+g}%)" + note)
        return self._validation_text(v) + note

    def _validation_text(self, v: dict) -> str:
        if not v or set(v) == {"whole_network"}:
            return "not yet validated against whole-network timings"
        if "chosen" in v:  # nas profile fit: cross-validated on whole networks
            return (f"{v['method']}: MAPE {v['mape_pct']}%, {v['within_10pct'] * 100:.0f}% within ±10%, "
                    f"Kendall tau {v['kendall_tau']}")
        if "loo_mape_pct" in v:
            what = "timed ops" if "timed ops" in str(v.get("method", "")) else "source entries"
            return (f"leave-one-out on {v['entries']} {what}: MAPE {v['loo_mape_pct']}%, "
                    f"{v['loo_within_10pct'] * 100:.0f}% within ±10%")
        parts = [f"{prec}: {v[prec]['within_10pct'] * 100:.0f}% within ±10%, MAPE {v[prec]['mape_pct']}%, "
                 f"tau {v[prec]['kendall_tau']}" + (f" (the yardstick against itself: "
                                                    f"{v[prec]['yardstick_within_10pct'] * 100:.0f}%)"
                                                    if "yardstick_within_10pct" in v[prec] else "")
                 for prec in ("f32", "i8") if prec in v]
        return f"{v.get('samples', '?')} networks end to end; " + "; ".join(parts)

    def source_sentence(self) -> str:
        """Where the numbers come from, in one short sentence (the first clause of ``source``)."""
        first = re.split(r"(?<=[.;:])\s|\s\(", " ".join(self.source.split()), maxsplit=1)[0].rstrip(".;:")
        return first if len(first) <= 140 else first[:137].rstrip() + "..."

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "provenance": self.provenance, "source": self.source,
                "runtime": self.runtime, "threads": self.threads,
                "native_bits": list(self.native_bits),
                "bit_fallback": {str(k): v for k, v in self.bit_fallback.items()},
                "table_entries": len(self.table), "validation": self.validation}


def _with_bits(op: OpSpec, bits: int) -> OpSpec:
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


def _need(d: Any, key: str, typ, path: Path, where: str = "top level", default: Any = ...) -> Any:
    if not isinstance(d, dict):
        raise DeviceError(f"{path}: {where}: expected a mapping")
    if key not in d:
        if default is ...:
            raise DeviceError(f"{path}: {where}: missing field {key!r}")
        return default
    return expect(d[key], typ, f"{path}: {where}.{key}", DeviceError)


def _read_profile(path: Path) -> DeviceProfile:
    raw = read_yaml(path, DeviceError)
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
    if "expected_error" in validation:
        e = _need(validation, "expected_error", dict, path, "validation")
        for k in ("mape_pct", "median_signed_pct", "worst_pct"):
            _need(e, k, (int, float), path, "validation.expected_error")
        _need(e, "basis", str, path, "validation.expected_error")
    try:
        calib = {k: Calibration(**v) for k, v in
                 (_need(raw, "calibration", dict, path, default={}) or {}).items()}
    except TypeError as exc:
        raise DeviceError(f"{path}: calibration: {exc}") from None
    measure = None
    host_runtime = None
    kind = _need(raw, "kind", str, path, default="static")
    if kind == "host":
        host_runtime = _need(raw, "host_runtime", str, path, default="onnxruntime")
        table, calib_h, validation_h, measure = load_host_state(host_runtime)
        calib.update(calib_h)
        validation = validation_h or validation
        estimator = host_estimator(table, est_raw, host_runtime)
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
        lut_path = path.parent / _need(est_raw, "fit_lut", str, path, "estimator")
        table, estimator, lut_validation = lut_profile_parts(lut_path, _need(est_raw, "format", str, path, "estimator"))
        validation = {**lut_validation, **validation}  # the file may add a whole-network note
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
        calibration=calib, validation=validation, path=path, measure_missing=measure, host_runtime=host_runtime,
        fitted_for=_need(raw, "fitted_for", dict, path, default={}) or {})


def profile_files(path: str | Path) -> dict[str, Path]:
    """The files a profile YAML is made of, by the name the YAML gives them (relative to its
    folder): the YAML itself first (under its own name), then its latency table and the
    measurements its estimator is fitted to, when it names them. A host profile's measurements
    live in the host cache, not in files it names."""
    path = Path(path)
    raw = read_yaml(path, DeviceError)
    files = {path.name: path}
    if isinstance(raw, dict):
        est = raw.get("estimator")
        for ref in (raw.get("table"), est.get("fit_lut") if isinstance(est, dict) else None):
            if ref:
                files[str(ref)] = path.parent / str(ref)
    return files


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
        raw = read_yaml(path, DeviceError)
    if not isinstance(raw, dict):
        raise DeviceError(f"{path}: expected a mapping of op key to milliseconds")
    out = {}
    for k, v in raw.items():
        ms = v.get("ms") if isinstance(v, dict) else v
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not np.isfinite(ms) or ms <= 0:
            raise DeviceError(f"{path}: key {k!r}: latency must be a positive number, got {ms!r}")
        out[str(k)] = float(ms)
    return out
