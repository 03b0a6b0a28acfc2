"""``nas profile build|validate|export-ops|import|fit``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import nas
from nas.cli._app import err, out, profile_app, progress_printer, user_errors
from nas.errors import NasError
from nas.latency import (
    EXPORT_S_PER_OP,
    TFLITE_PHONE_S_PER_OP,
    calibrate_host,
    check_cpu_mask,
    export_ops,
    fit_measurements,
    import_results,
    load_device,
    ops_to_export,
    time_ops_of,
    validate_profile,
)
from nas.latency import _host as host


def _host_only(device: str):
    prof = load_device(device)
    if prof.measure_missing is None or prof.host_runtime is None:
        raise NasError(f"device {prof.name} is {prof.provenance}: only the host profiles (host, host-litert) "
                       f"can be measured on this machine")
    return prof


def _time_ops_first(prof, space: list[str], n: int, seed: int) -> None:
    """The ops of the candidates a calibration or validation will price, timed first with a bar."""
    time_ops_of(prof, [c for name in space for c in nas.load_space(name).sample_many(n, seed)],
                progress=progress_printer("timing their ops", "ops"))


@profile_app.command("build")
@user_errors
def profile_build(
    device: str = typer.Option("host", "--device", "-d", help="host (onnxruntime) or host-litert (LiteRT, XNNPACK; "
                                                               "needs the litert extra)."),
    space: list[str] = typer.Option(["mobilenetv3"], "--space", "-s", help="Space(s) whose ops to time."),
    samples: int = typer.Option(20, "--samples", min=0,
                                help="Time the ops of N sampled candidates per space; 0 = every op of "
                                     "the space (hours for the MobileNet spaces: BENCHMARKS.md)."),
    calibrate: int = typer.Option(0, "--calibrate", min=0,
                                  help="Then fit the whole-network calibration on N candidates per space."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Time the ops of a space on this host (cached; resumable), optionally calibrate."""
    prof = _host_only(device)
    ops = []
    for name in space:
        sp = nas.load_space(name)
        if samples:
            ops += [(op, prof.exec_bits(op.bits)) for c in sp.sample_many(samples, seed) for op in c.ops()]
        else:
            ops += [(op, prof.exec_bits(op.bits)) for op in sp.all_ops()]
    table = host.measure_ops(ops, progress=progress_printer("timing ops", "ops"), runtime=prof.host_runtime)
    out.print(f"{len(table)} op timings for {', '.join(space)} in {host.cache_dir(prof.host_runtime)}",
              markup=False)
    if calibrate:
        _time_ops_first(prof, space, calibrate, seed)
        cal = calibrate_host(prof, space, calibrate, seed=seed,
                             progress=progress_printer("exporting and timing whole networks", "steps"))
        for prec, c in cal.items():
            scales = ", ".join(f"{k} x{v:.2f}" for k, v in c.kind_scale.items())
            out.print(f"calibration {prec}: {scales}; {c.per_op_ms * 1000:+.1f} us/op, "
                      f"{c.per_melem_ms:+.4f} ms/Melem, {c.offset_ms:+.3f} ms")


@profile_app.command("validate")
@user_errors
def profile_validate(
    device: str = typer.Option("host", "--device", "-d", help="host or host-litert."),
    space: list[str] = typer.Option(["mobilenetv3"], "--space", "-s"),
    samples: int = typer.Option(20, "--samples", min=1),
    seed: int = typer.Option(1, "--seed"),
) -> None:
    """Time N random candidates end to end (fp32 and int8) against the prediction."""
    prof = _host_only(device)
    _time_ops_first(prof, space, samples, seed)
    res = validate_profile(prof, space, samples, seed=seed,
                           progress=progress_printer("exporting and timing whole networks (twice)", "steps"))
    host.save_calibration(prof.calibration, validation=res, runtime=prof.host_runtime)
    if prof.is_uncalibrated:
        err.print(f"note: {prof.name} is uncalibrated (sums of ops timed alone): `nas profile build --device "
                  f"{prof.name} --calibrate 12` fits the whole-network correction", markup=False)
    out.print(f"yardstick: {res['yardstick']}, each network timed twice", markup=False)
    for prec in ("f32", "i8"):
        r = res[prec]
        out.print(f"{prec}: {r['within_5pct'] * 100:.0f}% within ±5%, {r['within_10pct'] * 100:.0f}% "
                  f"within ±10%, MAPE {r['mape_pct']}%, Kendall tau {r['kendall_tau']} "
                  f"(uncalibrated sum of ops: {r['uncalibrated_mean_error_pct']:+.1f}% on average); the yardstick "
                  f"against itself: {r['yardstick_within_10pct'] * 100:.0f}% within ±10%, "
                  f"{r['yardstick_within_5pct'] * 100:.0f}% within ±5%", markup=False)


@profile_app.command("export-ops")
@user_errors
def profile_export_ops(
    space: list[str] = typer.Option(..., "--space", "-s", help="Space(s) whose ops to export."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for the op models, manifest and script."),
    samples: int = typer.Option(50, "--samples", min=0,
                                help="Ops of N sampled candidates per space; 0 = every op of the space. The "
                                     "count of op models and the time they take are printed first."),
    bits: str = typer.Option("32,8", "--bits", help="Precisions to export (comma-separated)."),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = typer.Option("onnx", "--format", help="onnx: time_ops.py (Python + onnxruntime on the device); "
                                                   "tflite: time_ops.sh (TFLite's benchmark_model over adb, no "
                                                   "Python on the phone; needs the litert extra)."),
    cpu_mask: str = typer.Option("auto", "--cpu-mask",
                                 help="time_ops.sh: the cores to pin to, a hex taskset mask (c0 = cores 6-7, the "
                                      "Pixel 7's Cortex-X1 pair); auto = the prime cores of the phone's SoC."),
    cool_down: float = typer.Option(1.0, "--cool-down", min=0.0,
                                    help="time_ops.sh: seconds of rest between ops (COOL_DOWN overrides it)."),
) -> None:
    """Write a space's op models (fp32/int8), a manifest and a timing script for a device."""
    try:
        bit_list = tuple(int(b) for b in bits.split(","))
    except ValueError:
        raise NasError(f"--bits {bits!r}: expected comma-separated bit widths such as 32,8") from None
    for name in space:
        nas.load_space(name)  # unknown names fail before any work
    cpu_mask = check_cpu_mask(cpu_mask)
    n = len(ops_to_export(space, samples, seed, bit_list))
    per_op = EXPORT_S_PER_OP.get(fmt)
    which = f"every op of {', '.join(space)}" if samples == 0 else \
        f"the ops of {samples} sampled candidate{'s' if samples != 1 else ''} per space ({', '.join(space)})"
    plan = f"{n} op models: {which}, at {', '.join(map(str, bit_list))} bits"
    if per_op is not None:
        plan += f"; about {_minutes(n * per_op)} to export (~{per_op:g} s per {fmt} op model on a 2-core machine)"
    if fmt == "tflite":
        plan += (f", then about {_minutes(n * (TFLITE_PHONE_S_PER_OP + cool_down))} of phone time "
                 f"({TFLITE_PHONE_S_PER_OP:g} s per op + {cool_down:g} s cool-down). --samples sets the count")
    out.print(plan, markup=False)
    export_ops(space, out_dir, samples=samples, seed=seed, bits=bit_list,
               progress=progress_printer("exporting op models", "ops", every_s=30), fmt=fmt,
               cpu_mask=cpu_mask, cool_down_s=cool_down)
    if fmt == "tflite":
        out.print(f"wrote {out_dir}/manifest.json, {out_dir}/ops/ (.tflite), {out_dir}/ops.txt, "
                  f"{out_dir}/time_ops.sh and {out_dir}/benchmark_model_host.py", markup=False)
        out.print(f"with the phone on adb (and benchmark_model: see the script's header), run "
                  f"`{out_dir}/time_ops.sh` (`--local` tries the loop on this computer first), then "
                  f"`nas profile import --name NAME --results {out_dir}/benchmark_log.txt`", markup=False)
        return
    out.print(f"wrote {out_dir}/manifest.json, {out_dir}/ops/ and {out_dir}/time_ops.py")
    out.print(f"copy the folder to the device, run `python3 time_ops.py`, then "
              f"`nas profile import --name NAME --results {out_dir}/results.json`", markup=False)


def _minutes(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


@profile_app.command("import")
@user_errors
def profile_import(
    name: str = typer.Option(..., "--name"),
    results: Path = typer.Option(..., "--results", help="results.json written by time_ops.py, or "
                                                         "benchmark_log.txt written by time_ops.sh."),
    out_dir: Path = typer.Option(Path("profiles"), "--out", help="Where to write NAME.yaml."),
    runtime: Optional[str] = typer.Option(None, "--runtime",
                                          help="What timed the ops (default: onnxruntime-cpu for results.json, "
                                               "tflite-xnnpack for a benchmark_model log)."),
    threads: int = typer.Option(1, "--threads", min=1),
    force: bool = typer.Option(False, "--force", help="Replace an existing profile of that name."),
) -> None:
    """Build a measured profile from op timings taken on the device."""
    res = import_results(name, results, out_dir, runtime=runtime, threads=threads, force=force)
    for key, line, why in res.skipped:
        err.print(f"warning: {results}: line {line}: no 'Inference (avg)' timing for op {key} ({why}): "
                  f"skipped, the estimator prices it", markup=False)
    v = res.validation
    out.print(f"wrote {res.path} ({res.ops} op timings, {res.runtime}"
              f"{f'; {len(res.skipped)} ops skipped' if res.skipped else ''}); use it with --device {res.path}",
              markup=False)
    w = v["worst_fit"]
    out.print(f"the estimator that prices ops outside the table: leave-one-out over the {v['entries']} timed ops "
              f"MAPE {v['loo_mape_pct']}%, {v['loo_within_10pct'] * 100:.0f}% within ±10% (fitted to all of them: "
              f"MAPE {v['fit_mape_pct']}%, worst {w['op']} at {w['estimated_over_timed']:.2f}x its timing). "
              f"A network's price says how many of its ops were timed (nas latency --device {res.path} KEY)",
              markup=False)


@profile_app.command("fit")
@user_errors
def profile_fit(
    name: str = typer.Option(..., "--name"),
    measurements: Path = typer.Option(..., "--measurements",
                                      help="CSV with a header: key (quoted: keys contain commas), ms, and "
                                           "optionally classes and in_channels per network."),
    prior: str = typer.Option("pixel7", "--prior", help="Profile whose per-op model is the starting point."),
    column: str = typer.Option("ms", "--column", help="The CSV column holding the milliseconds."),
    classes: int = typer.Option(1000, "--classes",
                                help="Classes of the timed networks where the CSV has no classes column."),
    in_channels: int = typer.Option(3, "--in-channels",
                                    help="Input channels where the CSV has no in_channels column."),
    out_dir: Path = typer.Option(Path("profiles"), "--out"),
    runtime: str = typer.Option("unknown", "--runtime", help="What timed them, e.g. tflite-xnnpack."),
    threads: int = typer.Option(1, "--threads", min=1),
    force: bool = typer.Option(False, "--force", help="Replace an existing profile of that name."),
) -> None:
    """Learn a profile from end-to-end latencies of whole candidates."""
    prior_prof = load_device(prior)
    path, fit = fit_measurements(name, measurements, out_dir, prior_prof, runtime=runtime,
                                 threads=threads, force=force, column=column, classes=classes,
                                 in_channels=in_channels)
    v = fit.cv
    out.print(f"wrote {path}; model: {fit.level}, {fit.loss} loss (chosen by cross-validation); {v['method']}: MAPE "
              f"{v['mape_pct']}%, {v['within_10pct'] * 100:.0f}% within ±10%, Kendall tau {v['kendall_tau']}")
    for r in fit.rejected:
        err.print(f"note: rejected a model with lower cross-validated error (MAPE {r['cv_mape_pct']}%): {r['reason']}",
                  markup=False)
    prof = load_device(path)
    for p, what in (("f32", "fp32"), ("i8", "int8")):
        if p not in prof.fitted_for.get("precisions", [p]):
            err.print(f"warning: no {what} network among the timings: {what} networks are priced by the prior "
                      f"{prior_prof.name} ({prior_prof.provenance}) unchanged, not corrected by this fit; time "
                      f"some {what} networks to fit them", markup=False)


# ----------------------------------------------------------------------------- search
