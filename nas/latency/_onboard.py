"""Onboarding a real device.

1. ``export_ops``: the op models of a space (ONNX fp32 and int8), a manifest and a standalone
   script (numpy + onnxruntime only) that times them on the target and writes results.json.
2. ``import_results``: a profile (YAML + table) from those timings; the estimator is fitted
   to them so ops that were not exported still get a number.
3. ``fit_measurements``: a profile from end-to-end latencies of whole candidates, for teams
   that can only time whole models: least squares over the per-op estimator's coefficients,
   with another profile's estimator as the prior.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from nas._paths import atomic_write
from nas.errors import DeviceError, NasError
from nas.export import export_module, quantize_int8
from nas.latency._calibration import Calibration
from nas.latency._estimator import Estimator, loo_errors, op_features, select_terms
from nas.latency._fit import WholeNetworkFit, fit_whole_networks
from nas.latency._host import input_for
from nas.latency._profile import DeviceProfile, read_table
from nas.latency._scripts import HOST_BENCHMARK_SCRIPT, TIMING_SCRIPT, benchmark_script
from nas.models import build_op
from nas.space import FLOAT_BITS, Candidate, OpSpec, load_space, parse_candidate

__all__ = ["export_ops", "ops_to_export", "import_results", "ImportedProfile", "fit_measurements",
           "read_benchmark_log", "LogTimings", "TIMING_SCRIPT"]

Progress = Callable[[int, int], None]

@dataclass
class LogTimings:
    """What time_ops.sh's log holds: op key -> milliseconds, and the ops without a timing
    (key, line of its ``== hwnas op`` header, what the run printed instead)."""

    table: dict[str, float]
    skipped: list[tuple[str, int, str]] = field(default_factory=list)


def read_benchmark_log(path: Path) -> LogTimings:
    """Op timings from time_ops.sh's log: TFLite benchmark_model output, each run after a
    ``== hwnas op KEY`` line; the ``Inference (avg): X`` figure (microseconds). An op whose run
    printed no timing (benchmark_model failed, the phone was unplugged) is skipped and named."""
    table: dict[str, float] = {}
    skipped: list[tuple[str, int, str]] = []
    key, key_line, last = None, 0, ""

    def skip():
        skipped.append((key, key_line, last or "no output"))

    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            if line.startswith("== hwnas op "):
                if key is not None:
                    skip()
                key, key_line, last = line[len("== hwnas op "):].strip(), i, ""
                try:
                    OpSpec.from_key(key)
                except ValueError as exc:
                    raise DeviceError(f"{path}: line {i}: {exc}") from None
                continue
            if line.startswith("== hwnas "):  # the script's own notes (thermal status)
                continue
            m = re.search(r"Inference \(avg\):\s*([0-9.eE+-]+)", line)
            if m and key is not None:
                try:
                    us = float(m.group(1))
                except ValueError:
                    raise DeviceError(f"{path}: line {i}: unreadable timing {m.group(1)!r}") from None
                if not np.isfinite(us) or us <= 0:
                    raise DeviceError(f"{path}: line {i}: timing must be positive, got {m.group(1)}")
                table[key] = us / 1e3
                key = None
            elif key is not None and line.strip():
                last = line.strip()[:120]
    if key is not None:
        skip()
    skipped = [sk for sk in skipped if sk[0] not in table]  # timed again later (a resumed run): not skipped
    if not table:
        if skipped:
            k, ln, why = skipped[0]
            raise DeviceError(f"{path}: none of its {len(skipped)} ops has an 'Inference (avg)' timing "
                              f"(line {ln}, op {k}: {why})")
        raise DeviceError(f"{path}: no '== hwnas op' sections: not a log written by time_ops.sh")
    return LogTimings(table, skipped)


def is_benchmark_log(path: Path) -> bool:
    """A log of time_ops.sh (benchmark_model) rather than time_ops.py's results.json."""
    return Path(path).suffix not in (".json", ".yaml", ".yml")


def read_results(path: Path) -> LogTimings:
    """results.json (time_ops.py) or benchmark_log.txt (time_ops.sh)."""
    path = Path(path)
    if not path.is_file():
        raise DeviceError(f"results file not found: {path}")
    if not is_benchmark_log(path):
        return LogTimings(read_table(path))
    return read_benchmark_log(path)


def ops_to_export(space_names: list[str], samples: int = 50, seed: int = 0,
                  bits: tuple[int, ...] = (32, 8)) -> list[OpSpec]:
    """The distinct op models ``export_ops`` writes: every op of ``samples`` sampled candidates
    per space (0: every op of the space), at each of ``bits``."""
    return _ops_for_export(list(space_names), samples, seed, list(bits))


def _ops_for_export(space_names: list[str], samples: int, seed: int, bits: list[int]) -> list[OpSpec]:
    ops: dict[str, OpSpec] = {}
    for name in space_names:
        space = load_space(name)
        if samples:
            base = [op for c in space.sample_many(samples, seed) for op in c.ops()]
        else:
            base = list(space.all_ops())
        for op in base:
            for b in bits:
                spec = replace(op, bits=b)
                ops.setdefault(spec.key, spec)
    return list(ops.values())


def export_ops(space_names: list[str], out_dir: Path, samples: int = 50, seed: int = 0,
               bits: tuple[int, ...] = (32, 8), progress: Progress | None = None, fmt: str = "onnx",
               cpu_mask: str = "auto", cool_down_s: float = 1.0) -> Path:
    """Write op models, manifest.json and the timing script into ``out_dir``. ``samples`` > 0
    exports the ops of that many sampled candidates per space (0: every op of the space).
    ``fmt``: ``onnx`` (time_ops.py, onnxruntime on the device) or ``tflite`` (time_ops.sh,
    TFLite's benchmark_model over adb; int8 ops as PT2E static int8 .tflite files; with
    benchmark_model_host.py, the stand-in ``time_ops.sh --local`` runs). ``cpu_mask`` and
    ``cool_down_s``: time_ops.sh's default pinning (``auto``: the SoC's prime cores) and rest
    between ops."""
    if fmt not in ("onnx", "tflite"):
        raise NasError(f"--format {fmt!r}: choose onnx or tflite")
    script_text = benchmark_script(cpu_mask, cool_down_s) if fmt == "tflite" else TIMING_SCRIPT
    if fmt == "tflite":
        from nas.export import litert

        litert.require()
    out_dir = Path(out_dir)
    (out_dir / "ops").mkdir(parents=True, exist_ok=True)
    ops = _ops_for_export(space_names, samples, seed, list(bits))
    manifest_path = out_dir / "manifest.json"
    entries = json.loads(manifest_path.read_text())["ops"] if manifest_path.exists() else []
    other = [e["file"] for e in entries if not e["file"].endswith("." + fmt)]
    if other:
        raise NasError(f"{out_dir} already holds op models in another format ({other[0]}); export "
                       f"--format {fmt} into another --out folder")
    done = {e["key"] for e in entries}
    with tempfile.TemporaryDirectory() as tmp:
        for i, op in enumerate(ops, 1):
            if op.key not in done:
                torch.manual_seed(0)
                x = input_for(op)
                fname = f"ops/op{len(entries):05d}.{fmt}"
                rng = np.random.default_rng(1)
                if fmt == "tflite":  # int8 ops as the phone runs int8 blocks: PT2E static int8
                    litert.export_tflite(build_op(op).eval(), out_dir / fname, list(x.shape), int8=op.bits < FLOAT_BITS,
                                         calibration=rng.standard_normal((4, *x.shape[1:])).astype(np.float32))
                else:
                    fp32 = Path(tmp) / "op.onnx"
                    export_module(build_op(op), x, fp32)
                    if op.bits < FLOAT_BITS:
                        quantize_int8(fp32, out_dir / fname, [rng.standard_normal(x.shape).astype(np.float32)
                                                              for _ in range(4)])
                    else:
                        fp32.replace(out_dir / fname)
                entries.append({"key": op.key, "file": fname, "input_shape": list(x.shape)})
                done.add(op.key)
            if progress:
                progress(i, len(ops))
            if i % 50 == 0 or i == len(ops):
                atomic_write(manifest_path, json.dumps({"spaces": space_names, "ops": entries}, indent=0))
    atomic_write(manifest_path, json.dumps({"spaces": space_names, "ops": entries}, indent=0))
    if fmt == "tflite":
        atomic_write(out_dir / "ops.txt", "".join(f"{e['file']} {e['key']}\n" for e in entries
                                                  if e["file"].endswith(".tflite")))
        atomic_write(out_dir / "benchmark_model_host.py", HOST_BENCHMARK_SCRIPT)
        (out_dir / "benchmark_model_host.py").chmod(0o755)
        script = out_dir / "time_ops.sh"
    else:
        script = out_dir / "time_ops.py"
    atomic_write(script, script_text)
    script.chmod(0o755)
    return out_dir


def _write_profile(out_dir: Path, name: str, doc: dict, table: dict[str, float] | None,
                   force: bool = False) -> Path:
    path = out_dir / f"{name}.yaml"
    if path.exists() and not force:
        raise NasError(f"{path} exists; choose another --name or pass --force to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    if table is not None:
        table_path = out_dir / f"{name}.table.json"
        atomic_write(table_path, json.dumps(table, indent=0, sort_keys=True))
        doc["table"] = table_path.name
    atomic_write(path, yaml.safe_dump(doc, sort_keys=False))
    return path


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise NasError(f"profile name {name!r}: use lower-case letters, digits, '-' and '_'")


@dataclass
class ImportedProfile:
    """What ``import_results`` wrote: the profile's path, its table size, the ops the log had no
    timing for, and how well the estimator that prices ops outside the table fits the table
    (leave-one-out: each timed op predicted by the estimator fitted to the others)."""

    path: Path
    ops: int
    skipped: list[tuple[str, int, str]]
    runtime: str
    validation: dict


def _op_fit_quality(keys: list[str], X: np.ndarray, y: np.ndarray, est: Estimator) -> dict:
    errs = loo_errors(X, y)
    ratio = est.predict_rows(X) / y
    worst = int(np.argmin(ratio)) if abs(np.log(ratio.min())) >= abs(np.log(ratio.max())) else int(np.argmax(ratio))
    return {
        "method": f"leave-one-out over the {len(y)} timed ops (the estimator that prices ops outside the table)",
        "entries": int(len(y)),
        "loo_mape_pct": round(float(np.mean(np.abs(errs)) * 100), 2),
        "loo_median_ape_pct": round(float(np.median(np.abs(errs)) * 100), 2),
        "loo_within_10pct": round(float(np.mean(np.abs(errs) <= 0.10)), 3),
        "fit_mape_pct": round(float(np.mean(np.abs(ratio - 1)) * 100), 2),
        "worst_fit": {"op": keys[worst], "estimated_over_timed": round(float(ratio[worst]), 3)},
        "whole_network": "op timings only: not yet checked against whole networks timed on the device "
                         "(time some and run nas profile fit --prior with this profile)",
    }


def import_results(name: str, results: Path, out_dir: Path, runtime: str | None = None,
                   threads: int = 1, source: str = "", force: bool = False) -> ImportedProfile:
    """A measured profile from time_ops.py's results.json or time_ops.sh's benchmark log.
    ``runtime`` defaults to what wrote the file: onnxruntime-cpu (results.json) or
    tflite-xnnpack (benchmark_model's log). Ops without a timing in the log are skipped and
    returned; the estimator fitted to the table prices every other op, and its leave-one-out
    error on the table is the profile's validation figure."""
    _check_name(name)
    results = Path(results)
    log = is_benchmark_log(results)
    timings = read_results(results)
    table = timings.table
    keys, X, y = list(table), [], []
    for key in keys:
        try:
            X.append(op_features(OpSpec.from_key(key)))
        except ValueError as exc:
            raise DeviceError(f"{results}: {exc}") from None
        y.append(table[key])
    if len(keys) < 2:
        raise DeviceError(f"{results}: {len(keys)} timed op: an estimator for the other ops needs at least 2")
    Xa, ya = select_terms(np.array(X), np.array(y))[0], np.array(y)
    est = Estimator.fit(Xa, ya)
    runtime = runtime or ("tflite-xnnpack" if log else "onnxruntime-cpu")
    script = "time_ops.sh (TFLite benchmark_model)" if log else "time_ops.py (onnxruntime)"
    bits = sorted({OpSpec.from_key(k).bits for k in table})
    native = [b for b in bits] or [FLOAT_BITS]
    fallback = {b: (8 if 8 in native else FLOAT_BITS) for b in (4, 6, 8) if b not in native}
    skipped = f"; {len(timings.skipped)} ops without a timing skipped" if timings.skipped else ""
    validation = _op_fit_quality(keys, Xa, ya, est)
    doc = {
        "name": name,
        "description": f"{name}: op latencies timed on the device with hwnas op models ({len(table)} ops); "
                       f"ops outside the table are priced by an estimator fitted to them, and every price "
                       f"says how many of a network's ops were measured.",
        "provenance": "measured",
        "source": source or f"nas profile import of {results.name}: {len(table)} op models timed on the "
                            f"device by {script}{skipped}",
        "runtime": runtime, "threads": threads,
        "native_bits": native, "bit_fallback": fallback,
        "estimator": {"coef": {f: float(v) for f, v in est.coef.items() if v}},
        "validation": validation,
    }
    if timings.skipped:
        doc["skipped_ops"] = [k for k, _, _ in timings.skipped]
    path = _write_profile(Path(out_dir), name, doc, table, force)
    return ImportedProfile(path, len(table), timings.skipped, runtime, validation)


@dataclass
class Measurement:
    """One whole-network timing: the candidate, its latency and what it was built for."""

    candidate: Candidate
    ms: float
    classes: int
    in_channels: int
    line: int


def _int_column(row: dict, col: str, default: int, path: Path, line: int, low: int) -> int:
    raw = row.get(col)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        v = int(str(raw).strip())
    except ValueError:
        raise NasError(f"{path}: line {line}: {col} {raw!r} is not a whole number") from None
    if v < low:
        raise NasError(f"{path}: line {line}: {col} must be at least {low}, got {v}")
    return v


def read_measurements(path: Path, column: str = "ms", classes: int = 1000,
                      in_channels: int = 3) -> list[Measurement]:
    """CSV with a header: ``key`` (candidate key, quoted: keys contain commas), the latency
    column (``ms`` unless told) and optionally ``classes`` and ``in_channels`` per network
    (``classes``/``in_channels`` give the default)."""
    path = Path(path)
    if not path.is_file():
        raise NasError(f"measurements file not found: {path}")
    if classes < 2:
        raise NasError(f"--classes must be at least 2, got {classes}")
    if in_channels < 1:
        raise NasError(f"--in-channels must be at least 1, got {in_channels}")
    rows = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"key", column} <= set(reader.fieldnames):
            raise NasError(f"{path}: needs a header with columns 'key' and '{column}' "
                           f"(found: {', '.join(reader.fieldnames or []) or 'nothing'})")
        for i, row in enumerate(reader, start=2):
            if row.get(None):  # more fields than the header: an unquoted key, whose blocks hold commas
                raise NasError(f"{path}: line {i}: more fields than the header: a candidate key contains "
                               f"commas, so quote the key (\"mobilenetv3.small:r224:...,...\",1.23)")
            try:
                ms = float(row[column])
            except (TypeError, ValueError):
                raise NasError(f"{path}: line {i}: {column} {row[column]!r} is not a number") from None
            if not np.isfinite(ms) or ms <= 0:
                raise NasError(f"{path}: line {i}: {column} must be positive, got {row[column]}")
            try:
                cand = parse_candidate(row["key"])
            except NasError as exc:
                raise NasError(f"{path}: line {i}: {exc}") from None
            rows.append(Measurement(cand, ms, _int_column(row, "classes", classes, path, i, 2),
                                    _int_column(row, "in_channels", in_channels, path, i, 1), i))
    if len(rows) < 3:
        raise NasError(f"{path}: need at least 3 measured candidates, got {len(rows)}")
    return rows


# The physical floor of a fitted profile's price (``_floor_check``): no network does its
# multiply-adds faster than FLOOR_MARGIN times the fastest rate (MACs per ms) that any timed
# network of the same precision reached on the device. A core's compute bounds that rate, and
# XNNPACK reaches its best rates on the largest layers: across the 5,000 HELP networks timed on a
# Pixel 2 and a Galaxy A50 (../shared/device_data) the fastest network's rate is 1.2-1.3x the
# median's, and 10 random ones always included one within 1.31x of the fastest; 3x leaves room for
# networks larger than any timed. A fit below it has learnt a negative offset that the timed
# networks' sizes hid (12 fp32 timings priced an int8 MobileNetV3 at 0.019 ms, issue 28).
FLOOR_MARGIN = 3.0
FLOOR_SAMPLES = 500  # sampled candidates per space and precision the floor is checked on


def _precision(cand: Candidate) -> str:
    return "i8" if cand.is_quantized else "f32"


def _fitted_parts(fit: WholeNetworkFit, prior: DeviceProfile, seen: set[str]) -> tuple[dict, dict, dict]:
    """(estimator coefficients, calibration per precision, table) of a fitted profile. A
    precision no timed network ran at keeps the prior's estimator terms, table entries and
    calibration unchanged: the fit saw nothing to correct them with."""
    coef = {f: float(v) for f, v in fit.estimator.coef.items() if v}
    calibration, table = {}, dict(fit.op_ms)
    for p in ("f32", "i8"):
        if p not in seen:
            calibration[p] = {**prior.calibration[p].to_dict(),
                              "source": f"the prior {prior.name}'s, unchanged: no {'int8' if p == 'i8' else 'fp32'} "
                                        f"network among the timings"}
        elif fit.scale is not None:
            calibration[p] = _scaled(prior.calibration[p], fit.scale, f"nas profile fit: prior x {fit.scale:.4f}")
        else:
            calibration[p] = {"offset_ms": fit.offset_ms, "source": f"nas profile fit ({fit.level}, {fit.loss})"}
    for key, ms in prior.table.items():
        p = "i8" if OpSpec.from_key(key).bits < FLOAT_BITS else "f32"
        if fit.scale is not None or p not in seen:  # the prior's table where the fit keeps the prior
            table.setdefault(key, ms)
    return coef, calibration, table


def _floor_check(rows: list["Measurement"], prior: DeviceProfile, seen: set[str], seed: int):
    """A check for ``fit_whole_networks``: None if the fitted profile prices every network it
    is checked on at or above its floor (FLOOR_MARGIN), else the reason. Checked on the timed
    networks, the references of their spaces and FLOOR_SAMPLES sampled candidates per space,
    each at every fitted precision and with the timed class and channel counts."""
    rate: dict[str, float] = {}
    for m in rows:
        p = _precision(m.candidate)
        r = _macs(m.candidate, m.classes, m.in_channels) / m.ms
        rate[p] = max(rate.get(p, 0.0), r)
    contexts = sorted({(m.classes, m.in_channels) for m in rows})
    nets: list[Candidate] = [m.candidate for m in rows]
    for space in {id(m.candidate.search_space): m.candidate.search_space for m in rows}.values():
        nets += [space.reference(r) for r in space.references()]
        nets += space.sample_many(FLOOR_SAMPLES, seed)
    checked = [(c.replace_bits(32 if p == "f32" else 8) if _precision(c) != p else c, p)
               for c in nets for p in sorted(seen)]

    def check(fit: WholeNetworkFit) -> str | None:
        coef, calibration, table = _fitted_parts(fit, prior, seen)
        prof = DeviceProfile(
            name="fit", description="", provenance="fitted", source="", runtime="", threads=1,
            native_bits=prior.native_bits, bit_fallback=dict(prior.bit_fallback), table=table,
            estimator=Estimator(coef), calibration={p: Calibration(**d) for p, d in calibration.items()})
        worst = None
        for cand, p in checked:
            for classes, ch in contexts:
                ms = prof.latency_ms(cand, num_classes=classes, in_channels=ch)
                floor = _macs(cand, classes, ch) / (FLOOR_MARGIN * rate[p])
                if not ms >= floor and (worst is None or ms / floor < worst[0]):
                    worst = (ms / floor, cand, ms, floor)
        if worst is None:
            return None
        _, cand, ms, floor = worst
        prec = "int8" if cand.is_quantized else "fp32"
        return (f"{fit.level} ({fit.loss} loss) priced the {prec} network {cand.key} at {ms:.3g} ms, below its "
                f"floor of {floor:.3g} ms ({FLOOR_MARGIN:g}x the fastest MAC rate of a timed {prec} network)")

    return check


def _macs(cand: Candidate, classes: int, in_channels: int) -> float:
    return float(sum(op.macs for op in cand.ops(num_classes=classes, in_channels=in_channels)))


def fit_measurements(name: str, measurements: Path, out_dir: Path, prior: DeviceProfile,
                     runtime: str = "unknown", threads: int = 1, source: str = "",
                     force: bool = False, column: str = "ms", classes: int = 1000,
                     in_channels: int = 3, seed: int = 0) -> tuple[Path, WholeNetworkFit]:
    """A profile learnt from whole-network latencies (``nas.latency._fit``), with ``prior``'s
    estimator as the starting point. Each network is priced with its own class and input
    channel count, as the search will price it. A precision (fp32 / int8) none of the timed
    networks ran at keeps the prior's prices unchanged, and the profile says so
    (``fitted_for.precisions``; ``DeviceProfile.provenance_for``). A model that prices any
    checked network below its physical floor (``FLOOR_MARGIN``) is rejected for the next best
    by cross-validation; if every one is, the fit is refused. Returns the path and the fit."""
    _check_name(name)
    rows = read_measurements(measurements, column, classes, in_channels)
    nets = []
    for m in rows:
        try:
            ops = m.candidate.ops(num_classes=m.classes, in_channels=m.in_channels)
            nets.append([(op, prior.exec_bits(op.bits)) for op in ops])
        except NasError as exc:
            raise NasError(f"{measurements}: line {m.line}: {exc}") from None
    seen = {_precision(m.candidate) for m in rows}
    prior_ms = [prior.latency_ms(m.candidate, num_classes=m.classes, in_channels=m.in_channels) for m in rows]
    fit = fit_whole_networks(nets, [m.ms for m in rows], prior.estimator, prior_ms=prior_ms, seed=seed,
                             accept=_floor_check(rows, prior, seen, seed))
    n = len(rows)
    fitted_for = {"classes": sorted({m.classes for m in rows}),
                  "in_channels": sorted({m.in_channels for m in rows}),
                  "spaces": sorted({m.candidate.space for m in rows}),
                  "precisions": sorted(seen), "prior": prior.name, "prior_provenance": prior.provenance}
    what = {"scale": f"the prior's prediction times {fit.scale:.3f}" if fit.scale else "",
            "kinds": "one coefficient per feature kind, regularised toward the prior",
            "ops": f"per-feature-kind coefficients plus a correction for each of the {len(fit.op_ms)} "
                   f"operators timed"}[fit.level]
    unseen = [p for p in ("f32", "i8") if p not in seen]
    only = "" if not unseen else \
        f"; {'int8' if unseen[0] == 'i8' else 'fp32'} networks are priced by the prior unchanged (none was timed)"
    validation = {**fit.cv, "loo_mape_pct": fit.cv["mape_pct"], "loo_within_10pct": fit.cv["within_10pct"],
                  "loo_median_ape_pct": fit.cv["median_ape_pct"], "chosen": f"{fit.level}, {fit.loss} loss",
                  "tried": fit.tried, "rejected_below_floor": fit.rejected}
    coef, calibration, table = _fitted_parts(fit, prior, seen)
    doc = {
        "name": name,
        "description": f"{name}: learnt from {n} whole-network timings ({what}){only}.",
        "provenance": "fitted",
        "source": source or f"fitted from {n} whole-network timings on {runtime}, prior {prior.name} "
                            f"({prior.provenance}); {Path(measurements).name}, networks with "
                            f"{'/'.join(map(str, fitted_for['classes']))} classes and "
                            f"{'/'.join(map(str, fitted_for['in_channels']))} input channels{only}",
        "runtime": runtime, "threads": threads,
        "native_bits": list(prior.native_bits),
        "bit_fallback": {int(k): int(v) for k, v in prior.bit_fallback.items()},
        "fitted_for": fitted_for,
        "estimator": {"coef": coef},
        "calibration": calibration,
        "validation": validation,
    }
    return _write_profile(Path(out_dir), name, doc, table or None, force), fit


def _scaled(cal, s: float, source: str) -> dict:
    d = cal.to_dict()
    d.update(scale=cal.scale * s, kind_scale={k: v * s for k, v in cal.kind_scale.items()},
             per_op_ms=cal.per_op_ms * s, per_melem_ms=cal.per_melem_ms * s, offset_ms=cal.offset_ms * s,
             source=source)
    return d
