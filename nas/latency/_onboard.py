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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from nas._paths import atomic_write
from nas.errors import DeviceError, NasError
from nas.export import export_module, quantize_int8
from nas.latency._estimator import Estimator, op_features
from nas.latency._fit import WholeNetworkFit, fit_whole_networks
from nas.latency._host import input_for
from nas.latency._profile import DeviceProfile, read_table
from nas.models import build_op
from nas.space import FLOAT_BITS, Candidate, OpSpec, load_space, parse_candidate

__all__ = ["export_ops", "import_results", "fit_measurements", "read_benchmark_log", "TIMING_SCRIPT",
           "BENCHMARK_SCRIPT"]

Progress = Callable[[int, int], None]

TIMING_SCRIPT = '''#!/usr/bin/env python3
"""Time the op models listed in manifest.json with onnxruntime; write results.json.

Runs on the target (any board or phone with Python, numpy and onnxruntime):
    python3 time_ops.py [--threads 1] [--runs 30]
Alternatively time each file with onnxruntime_perf_test and write results.json yourself as
{"<op key>": <median milliseconds>, ...}.
"""
import argparse, json, time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--runs", type=int, default=30)
ap.add_argument("--out", default="results.json")
args = ap.parse_args()
here = Path(__file__).resolve().parent
manifest = json.loads((here / "manifest.json").read_text())
out_path = here / args.out
results = json.loads(out_path.read_text()) if out_path.exists() else {}
opts = ort.SessionOptions()
opts.intra_op_num_threads = args.threads
opts.inter_op_num_threads = 1
for i, entry in enumerate(manifest["ops"], 1):
    if entry["key"] in results:
        continue
    sess = ort.InferenceSession(str(here / entry["file"]), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal(entry["input_shape"]).astype(np.float32)
    for _ in range(3):
        sess.run(None, {"input": x})
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        sess.run(None, {"input": x})
        times.append(time.perf_counter() - t0)
    results[entry["key"]] = min(times) * 1e3  # fastest run: steadiest on a busy device
    if i % 20 == 0 or i == len(manifest["ops"]):
        out_path.write_text(json.dumps(results, indent=0))
        print(f"{i}/{len(manifest['ops'])} timed", flush=True)
out_path.write_text(json.dumps(results, indent=0))
print(f"wrote {out_path} ({len(results)} ops); import it with: "
      f"nas profile import --name NAME --results {out_path.name}")
'''


BENCHMARK_SCRIPT = r'''#!/bin/sh
# Time the .tflite op models listed in ops.txt on an Android phone with TFLite's benchmark_model
# over adb; every run's output goes to benchmark_log.txt, which
#     nas profile import --name NAME --results benchmark_log.txt --runtime tflite-xnnpack
# reads (the "Inference (avg)" line of each op, microseconds).
#
# benchmark_model: the prebuilt Android binary (android_aarch64_benchmark_model) linked from
# https://ai.google.dev/edge/litert/models/measurement (native benchmark binary), or build it:
#     bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model
# Put it beside this script (named benchmark_model) or already at /data/local/tmp/benchmark_model.
#
# Flags: one thread, XNNPACK (TFLite's CPU default), 5 warm-up runs, 50 timed runs, pinned to the
# big cores (CPU_MASK: f0 on most 4+4 phones; 80 = the Pixel 7's first Cortex-X1 pair is c0).
# Usage: ./time_ops.sh   (ADB="adb -s SERIAL" CPU_MASK=c0 ./time_ops.sh for one device)
set -eu
ADB=${ADB:-adb}
CPU_MASK=${CPU_MASK:-f0}
BIN=/data/local/tmp/benchmark_model
DIR=/data/local/tmp/hwnas_ops
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/benchmark_model" ]; then $ADB push "$here/benchmark_model" $BIN >/dev/null; $ADB shell chmod +x $BIN; fi
$ADB shell mkdir -p $DIR
$ADB push "$here/ops/." $DIR/ >/dev/null
log="$here/benchmark_log.txt"
: > "$log"
n=$(wc -l < "$here/ops.txt"); i=0
while read -r file key; do
    i=$((i + 1))
    echo "== hwnas op $key" >> "$log"
    $ADB shell taskset "$CPU_MASK" $BIN --graph=$DIR/"$(basename "$file")" --num_threads=1 --use_xnnpack=true \
        --warmup_runs=5 --num_runs=50 < /dev/null >> "$log" 2>&1 || echo "benchmark_model failed" >> "$log"
    echo "$i/$n $key"
done < "$here/ops.txt"
echo "wrote $log; import it with: nas profile import --name NAME --results $log --runtime tflite-xnnpack"
'''


def read_benchmark_log(path: Path) -> dict[str, float]:
    """Op key -> milliseconds from time_ops.sh's log: TFLite benchmark_model output, each run
    after a ``== hwnas op KEY`` line; the ``Inference (avg): X`` figure (microseconds)."""
    table: dict[str, float] = {}
    key, key_line = None, 0
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            if line.startswith("== hwnas op "):
                if key is not None:
                    raise DeviceError(f"{path}: line {key_line}: no 'Inference (avg)' timing for op {key}")
                key, key_line = line[len("== hwnas op "):].strip(), i
                try:
                    OpSpec.from_key(key)
                except ValueError as exc:
                    raise DeviceError(f"{path}: line {i}: {exc}") from None
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
    if key is not None:
        raise DeviceError(f"{path}: line {key_line}: no 'Inference (avg)' timing for op {key}")
    if not table:
        raise DeviceError(f"{path}: no '== hwnas op' sections: not a log written by time_ops.sh")
    return table


def read_results(path: Path) -> dict[str, float]:
    """results.json (time_ops.py) or benchmark_log.txt (time_ops.sh)."""
    path = Path(path)
    if not path.is_file():
        raise DeviceError(f"results file not found: {path}")
    if path.suffix in (".json", ".yaml", ".yml"):
        return read_table(path)
    return read_benchmark_log(path)


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
               bits: tuple[int, ...] = (32, 8), progress: Progress | None = None, fmt: str = "onnx") -> Path:
    """Write op models, manifest.json and the timing script into ``out_dir``. ``samples`` > 0
    exports the ops of that many sampled candidates per space (0: every op of the space).
    ``fmt``: ``onnx`` (time_ops.py, onnxruntime on the device) or ``tflite`` (time_ops.sh,
    TFLite's benchmark_model over adb; int8 ops as PT2E static int8 .tflite files)."""
    if fmt not in ("onnx", "tflite"):
        raise NasError(f"--format {fmt!r}: choose onnx or tflite")
    if fmt == "tflite":
        from nas.export import _litert as litert

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
        script = out_dir / "time_ops.sh"
        atomic_write(script, BENCHMARK_SCRIPT)
    else:
        script = out_dir / "time_ops.py"
        atomic_write(script, TIMING_SCRIPT)
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


def import_results(name: str, results: Path, out_dir: Path, runtime: str = "onnxruntime-cpu",
                   threads: int = 1, source: str = "", force: bool = False) -> Path:
    """A measured profile from a results.json written by time_ops.py."""
    _check_name(name)
    table = read_results(Path(results))
    X, y = [], []
    for key, ms in table.items():
        try:
            X.append(op_features(OpSpec.from_key(key)))
        except ValueError as exc:
            raise DeviceError(f"{results}: {exc}") from None
        y.append(ms)
    est = Estimator.fit(np.array(X), np.array(y))
    bits = sorted({OpSpec.from_key(k).bits for k in table})
    native = [b for b in bits] or [FLOAT_BITS]
    fallback = {b: (8 if 8 in native else FLOAT_BITS) for b in (4, 6, 8) if b not in native}
    doc = {
        "name": name,
        "description": f"{name}: op latencies timed on the device with hwnas op models ({len(table)} ops).",
        "provenance": "measured",
        "source": source or f"nas profile import of {Path(results).name}: {len(table)} op models "
                            f"timed on the device by time_ops.py",
        "runtime": runtime, "threads": threads,
        "native_bits": native, "bit_fallback": fallback,
        "estimator": {"coef": {f: float(v) for f, v in est.coef.items() if v}},
    }
    return _write_profile(Path(out_dir), name, doc, table, force)


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


def fit_measurements(name: str, measurements: Path, out_dir: Path, prior: DeviceProfile,
                     runtime: str = "unknown", threads: int = 1, source: str = "",
                     force: bool = False, column: str = "ms", classes: int = 1000,
                     in_channels: int = 3, seed: int = 0) -> tuple[Path, WholeNetworkFit]:
    """A profile learnt from whole-network latencies (``nas.latency._fit``), with ``prior``'s
    estimator as the starting point. Each network is priced with its own class and input
    channel count, as the search will price it. Returns the path and the fit."""
    _check_name(name)
    rows = read_measurements(measurements, column, classes, in_channels)
    nets = []
    for m in rows:
        try:
            ops = m.candidate.ops(num_classes=m.classes, in_channels=m.in_channels)
            nets.append([(op, prior.exec_bits(op.bits)) for op in ops])
        except NasError as exc:
            raise NasError(f"{measurements}: line {m.line}: {exc}") from None
    prior_ms = [prior.latency_ms(m.candidate, num_classes=m.classes, in_channels=m.in_channels) for m in rows]
    fit = fit_whole_networks(nets, [m.ms for m in rows], prior.estimator, prior_ms=prior_ms, seed=seed)
    n = len(rows)
    fitted_for = {"classes": sorted({m.classes for m in rows}),
                  "in_channels": sorted({m.in_channels for m in rows}),
                  "spaces": sorted({m.candidate.space for m in rows})}
    what = {"scale": f"the prior's prediction times {fit.scale:.3f}" if fit.scale else "",
            "kinds": "one coefficient per feature kind, regularised toward the prior",
            "ops": f"per-feature-kind coefficients plus a correction for each of the {len(fit.op_ms)} "
                   f"operators timed"}[fit.level]
    validation = {**fit.cv, "loo_mape_pct": fit.cv["mape_pct"], "loo_within_10pct": fit.cv["within_10pct"],
                  "loo_median_ape_pct": fit.cv["median_ape_pct"], "chosen": f"{fit.level}, {fit.loss} loss",
                  "tried": fit.tried}
    doc = {
        "name": name,
        "description": f"{name}: learnt from {n} whole-network timings ({what}).",
        "provenance": "fitted",
        "source": source or f"fitted from {n} whole-network timings on {runtime}, prior {prior.name} "
                            f"({prior.provenance}); {Path(measurements).name}, networks with "
                            f"{'/'.join(map(str, fitted_for['classes']))} classes and "
                            f"{'/'.join(map(str, fitted_for['in_channels']))} input channels",
        "runtime": runtime, "threads": threads,
        "native_bits": list(prior.native_bits),
        "bit_fallback": {int(k): int(v) for k, v in prior.bit_fallback.items()},
        "fitted_for": fitted_for,
        "estimator": {"coef": {f: float(v) for f, v in fit.estimator.coef.items() if v}},
        "calibration": {p: {"offset_ms": fit.offset_ms, "source": f"nas profile fit ({fit.level}, {fit.loss})"}
                        for p in ("f32", "i8")},
        "validation": validation,
    }
    table = fit.op_ms or None
    if fit.scale is not None:  # the prior as it is, every term of its prediction times the factor
        table = dict(prior.table) or None
        doc["calibration"] = {p: _scaled(prior.calibration[p], fit.scale, f"nas profile fit: prior x {fit.scale:.4f}")
                              for p in ("f32", "i8")}
    return _write_profile(Path(out_dir), name, doc, table, force), fit


def _scaled(cal, s: float, source: str) -> dict:
    d = cal.to_dict()
    d.update(scale=cal.scale * s, kind_scale={k: v * s for k, v in cal.kind_scale.items()},
             per_op_ms=cal.per_op_ms * s, per_melem_ms=cal.per_melem_ms * s, offset_ms=cal.offset_ms * s,
             source=source)
    return d
