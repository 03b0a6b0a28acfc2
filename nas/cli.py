"""The ``nas`` command: a thin shell over the library. The only module that prints.

Library errors (``nas.errors.NasError``) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

import nas
from nas.candidate import Candidate, format_number
from nas.errors import NasError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="hwnas: hardware-aware neural architecture search.")
space_app = typer.Typer(no_args_is_help=True, help="Inspect one search space.")
candidate_app = typer.Typer(no_args_is_help=True, help="Inspect one candidate network.")
profile_app = typer.Typer(no_args_is_help=True, help="Build and validate device profiles.")
app.add_typer(space_app, name="space")
app.add_typer(candidate_app, name="candidate")
app.add_typer(profile_app, name="profile")

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 160)

USER_ERROR = 2


def user_errors(fn: Callable) -> Callable:
    """Turn library errors into one line on stderr and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as exc:  # SearchInterrupted says how to resume
            err.print(str(exc) or "interrupted", markup=False)
            raise typer.Exit(130) from None
        except NasError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(USER_ERROR) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"hwnas {nas.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Optional[bool] = typer.Option(None, "--version", callback=_version,
                                                is_eager=True, help="Print the version.")) -> None:
    """hwnas: hardware-aware neural architecture search."""


def _sci(n: int) -> str:
    return f"{n:.3e}" if n >= 1_000_000 else str(n)


@app.command("spaces")
@user_errors
def spaces_cmd() -> None:
    """List the search spaces."""
    table = Table(title="search spaces")
    for col in ("name", "family", "skeletons", "candidates", "resolutions", "references"):
        table.add_column(col)
    for name in nas.space_names():
        s = nas.load_space(name)
        table.add_row(name, s.family, ", ".join(s.skeletons), _sci(s.num_candidates()),
                      ", ".join(map(str, s.resolutions)), str(len(s.references())))
    out.print(table)


@space_app.command("show")
@user_errors
def space_show(name: str = typer.Argument(..., help="Space name or path to a space YAML.")) -> None:
    """Show the choices and reference networks of a space."""
    s = nas.load_space(name)
    out.print(f"[bold]{s.name}[/bold] ({s.family}): {s.description}")
    out.print(f"candidates: {_sci(s.num_candidates())}")
    out.print(f"widths: {', '.join(format_number(w) for w in s.widths)} ({s.width_mode})")
    for sk in s.skeletons.values():
        table = Table(title=f"skeleton {sk.name} (resolutions {', '.join(map(str, sk.resolutions))})")
        for col in ("stage", "channels", "stride", "depth", "ops", "keep", "bits", "se", "act"):
            table.add_column(col)
        for i, st in enumerate(sk.stages, start=1):
            ch = str(st.channels) if s.width_mode == "multiplier" else "table"
            table.add_row(str(i), ch, str(st.stride), ",".join(map(str, st.depth)), " ".join(st.ops),
                          ",".join(format_number(k) for k in st.keep), ",".join(map(str, st.bits)),
                          "yes" if st.se else "", st.act)
        out.print(table)
    refs = Table(title="references")
    refs.add_column("name")
    refs.add_column("key")
    for r in s.references():
        refs.add_row(r, s.reference(r).key)
    out.print(refs)


def resolve_candidate(text: str) -> Candidate:
    """A candidate key, or the name of a reference network of any space."""
    if ":" in text:
        return Candidate.parse(text)
    for name in nas.space_names():
        s = nas.load_space(name)
        if text in s.references():
            return s.reference(text)
    raise NasError(f"{text!r} is neither a candidate key nor a reference name "
                   f"(`nas space show SPACE` lists the references)")


@candidate_app.command("describe")
@user_errors
def candidate_describe(
    key: str = typer.Argument(..., help="Candidate key, or a reference name such as mobilenet_v2_1.0_224."),
    num_classes: int = typer.Option(1000, "--classes", min=1, help="Classifier outputs."),
) -> None:
    """Blocks, operators, MACs, parameters and bytes of one candidate."""
    cand = resolve_candidate(key)
    space = cand.space_obj()
    out.print(f"key: {cand.key}", markup=False)
    out.print(f"space: {cand.space} (skeleton {cand.skeleton}), resolution {cand.resolution}, "
              f"width {format_number(cand.width)}"
              + ("" if space.contains(cand) else "  [outside the searched domain]"), markup=False)
    table = Table()
    for col in ("#", "op", "input", "in→out", "hidden", "k", "s", "g", "se", "act", "bits", "MMACs"):
        table.add_column(col, justify="right" if col in ("#", "MMACs") else "left")
    for i, op in enumerate(cand.ops(num_classes=num_classes)):
        table.add_row(str(i), op.kind, f"{op.h}x{op.w}", f"{op.cin}→{op.cout}",
                      str(op.hidden or ""), str(op.kernel), str(op.stride),
                      str(op.groups if op.groups > 1 else ""), str(op.se or ""), op.act,
                      str(op.bits), f"{op.macs / 1e6:.2f}")
    out.print(table)
    c = nas.count(cand, num_classes=num_classes)
    out.print(f"MACs {c['macs'] / 1e6:.1f}M   params {c['params'] / 1e6:.3f}M   "
              f"bytes {c['bytes'] / 1e6:.3f}MB")


@app.command("devices")
@user_errors
def devices_cmd() -> None:
    """List the device profiles and where their numbers come from."""
    from nas.latency import device_names, load_device

    table = Table(title="device profiles")
    for col in ("name", "provenance", "runtime", "threads", "bits (native; fallback)", "table", "validation"):
        table.add_column(col)
    for name in device_names():
        p = load_device(name)
        fb = ", ".join(f"{k}->{v}" for k, v in sorted(p.bit_fallback.items()))
        table.add_row(name, p.provenance, p.runtime, str(p.threads),
                      f"{','.join(map(str, p.native_bits))}; {fb}", str(len(p.table)),
                      _validation_text(p.validation))
    out.print(table)


def _validation_text(v: dict) -> str:
    if not v:
        return "none yet"
    if "loo_mape_pct" in v:
        return (f"leave-one-out on {v['entries']} source entries: MAPE {v['loo_mape_pct']}%, "
                f"{v['loo_within_10pct'] * 100:.0f}% within ±10%")
    parts = []
    for prec in ("f32", "i8"):
        if prec in v:
            parts.append(f"{prec}: {v[prec]['within_10pct'] * 100:.0f}% within ±10%, "
                         f"MAPE {v[prec]['mape_pct']}%, tau {v[prec]['kendall_tau']}")
    return f"{v.get('samples', '?')} networks end to end; " + "; ".join(parts)


@app.command("latency")
@user_errors
def latency_cmd(
    key: Optional[str] = typer.Argument(None, help="Candidate key."),
    device: str = typer.Option(..., "--device", "-d", help="Profile name or path to a profile YAML."),
    reference: Optional[str] = typer.Option(None, "--reference", help="A reference network by name."),
    num_classes: int = typer.Option(1000, "--classes", min=1),
) -> None:
    """Predicted latency of one network on a device, with the per-op breakdown."""
    from nas.latency import load_device

    if (key is None) == (reference is None):
        raise NasError("give a candidate KEY or --reference NAME (one of them)")
    cand = resolve_candidate(key or reference)
    prof = load_device(device)
    rows = prof.breakdown(cand, num_classes=num_classes)
    table = Table(title=f"{cand.key}")
    for col in ("#", "op", "bits (exec)", "ms", "source"):
        table.add_column(col, justify="right" if col in ("#", "ms") else "left")
    for i, r in enumerate(rows):
        src = "estimated" if r.source == "estimate" else "table"
        table.add_row(str(i), r.op.key, f"{r.op.bits} ({r.exec_bits})", f"{r.ms:.3f}", src)
    out.print(table)
    total = prof.latency_ms(cand, num_classes=num_classes)
    n_est = sum(r.source == "estimate" for r in rows)
    qual = "ESTIMATED " if prof.is_estimated else ""
    out.print(f"device: {prof.label}")
    out.print(f"{qual}predicted latency: {total:.3f} ms  (sum of ops {sum(r.ms for r in rows):.3f} ms, "
              f"calibration {prof.calibration_for(cand).source}; {n_est} of {len(rows)} ops "
              f"from the estimator)")


def _progress_printer(label: str):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeRemainingColumn(), console=err, transient=True)
    task = None

    def update(*args):
        nonlocal task
        done, total = args[-2], args[-1]
        if task is None:
            bar.start()
            task = bar.add_task(label, total=total)
        bar.update(task, completed=done, total=total)
        if done >= total:
            bar.stop()
    return update


def _host_only(device: str):
    from nas.latency import load_device

    prof = load_device(device)
    if prof.measure_missing is None:
        raise NasError(f"device {prof.name} is {prof.provenance}: only the host profile can be "
                       f"measured on this machine")
    return prof


@profile_app.command("build")
@user_errors
def profile_build(
    device: str = typer.Option("host", "--device", "-d"),
    space: list[str] = typer.Option(["mobilenetv3"], "--space", "-s", help="Space(s) whose ops to time."),
    samples: int = typer.Option(20, "--samples", min=0,
                                help="Time the ops of N sampled candidates per space; 0 = every op of "
                                     "the space (hours for the MobileNet spaces: BENCHMARKS.md)."),
    calibrate: int = typer.Option(0, "--calibrate", min=0,
                                  help="Then fit the whole-network calibration on N candidates per space."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Time the ops of a space on this host (cached; resumable), optionally calibrate."""
    import random

    from nas.latency import host

    prof = _host_only(device)
    ops = []
    for name in space:
        sp = nas.load_space(name)
        if samples:
            rng = random.Random(seed)
            for _ in range(samples):
                c = sp.sample(rng)
                ops += [(op, prof.exec_bits(op.bits)) for op in c.ops()]
        else:
            ops += [(op, prof.exec_bits(op.bits)) for op in sp.all_ops()]
    table = host.measure_ops(ops, progress=_progress_printer("timing ops"))
    out.print(f"{len(table)} op timings for {', '.join(space)} in {host.cache_dir()}")
    if calibrate:
        from nas.latency.validate import calibrate_host

        cal = calibrate_host(prof, space, calibrate, seed=seed,
                             progress=_progress_printer("end-to-end timings"))
        for prec, c in cal.items():
            scales = ", ".join(f"{k} x{v:.2f}" for k, v in c.kind_scale.items())
            out.print(f"calibration {prec}: {scales}; {c.per_op_ms * 1000:+.1f} us/op, "
                      f"{c.per_melem_ms:+.4f} ms/Melem, {c.offset_ms:+.3f} ms")


@profile_app.command("validate")
@user_errors
def profile_validate(
    device: str = typer.Option("host", "--device", "-d"),
    space: list[str] = typer.Option(["mobilenetv3"], "--space", "-s"),
    samples: int = typer.Option(20, "--samples", min=1),
    seed: int = typer.Option(1, "--seed"),
) -> None:
    """Time N random candidates end to end (fp32 and int8) against the prediction."""
    from nas.latency.host import save_calibration
    from nas.latency.validate import validate_profile

    prof = _host_only(device)
    res = validate_profile(prof, space, samples, seed=seed,
                           progress=_progress_printer("end-to-end timings"))
    save_calibration(prof.calibration, validation=res)
    for prec in ("f32", "i8"):
        r = res[prec]
        out.print(f"{prec}: {r['within_5pct'] * 100:.0f}% within ±5%, {r['within_10pct'] * 100:.0f}% "
                  f"within ±10%, MAPE {r['mape_pct']}%, Kendall tau {r['kendall_tau']} "
                  f"(uncalibrated sum of ops: {r['uncalibrated_mean_error_pct']:+.1f}% on average)")


@profile_app.command("export-ops")
@user_errors
def profile_export_ops(
    space: list[str] = typer.Option(..., "--space", "-s", help="Space(s) whose ops to export."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for the op models, manifest and script."),
    samples: int = typer.Option(50, "--samples", min=0,
                                help="Ops of N sampled candidates per space; 0 = every op of the space."),
    bits: str = typer.Option("32,8", "--bits", help="Precisions to export (comma-separated)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write a space's op models (ONNX fp32/int8), a manifest and time_ops.py for a device."""
    from nas.latency.onboard import export_ops

    try:
        bit_list = tuple(int(b) for b in bits.split(","))
    except ValueError:
        raise NasError(f"--bits {bits!r}: expected comma-separated bit widths such as 32,8") from None
    for name in space:
        nas.load_space(name)  # unknown names fail before any work
    export_ops(space, out_dir, samples=samples, seed=seed, bits=bit_list,
               progress=_progress_printer("exporting op models"))
    out.print(f"wrote {out_dir}/manifest.json, {out_dir}/ops/ and {out_dir}/time_ops.py")
    out.print(f"copy the folder to the device, run `python3 time_ops.py`, then "
              f"`nas profile import --name NAME --results {out_dir}/results.json`", markup=False)


@profile_app.command("import")
@user_errors
def profile_import(
    name: str = typer.Option(..., "--name"),
    results: Path = typer.Option(..., "--results", help="results.json written by time_ops.py."),
    out_dir: Path = typer.Option(Path("profiles"), "--out", help="Where to write NAME.yaml."),
    runtime: str = typer.Option("onnxruntime-cpu", "--runtime"),
    threads: int = typer.Option(1, "--threads", min=1),
    force: bool = typer.Option(False, "--force", help="Replace an existing profile of that name."),
) -> None:
    """Build a measured profile from op timings taken on the device."""
    from nas.latency.onboard import import_results

    path = import_results(name, results, out_dir, runtime=runtime, threads=threads, force=force)
    out.print(f"wrote {path}; use it with --device {path}")


@profile_app.command("fit")
@user_errors
def profile_fit(
    name: str = typer.Option(..., "--name"),
    measurements: Path = typer.Option(..., "--measurements", help="CSV with columns key,ms."),
    prior: str = typer.Option("pixel7", "--prior", help="Profile whose estimator is the prior."),
    out_dir: Path = typer.Option(Path("profiles"), "--out"),
    runtime: str = typer.Option("unknown", "--runtime"),
    threads: int = typer.Option(1, "--threads", min=1),
    force: bool = typer.Option(False, "--force", help="Replace an existing profile of that name."),
) -> None:
    """Build a profile from end-to-end latencies of whole candidates."""
    from nas.latency import load_device
    from nas.latency.onboard import fit_measurements

    path, v = fit_measurements(name, measurements, out_dir, load_device(prior), runtime=runtime,
                               threads=threads, force=force)
    out.print(f"wrote {path}; leave-one-out over {v['entries']} networks: MAPE {v['loo_mape_pct']}%, "
              f"{v['loo_within_10pct'] * 100:.0f}% within ±10%")


# ----------------------------------------------------------------------------- search

def _search_progress():
    """A rich progress bar fed by SearchProgress updates; returns (callback, stop)."""
    from rich.progress import BarColumn, Progress, TextColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} trials"),
                   TextColumn("{task.fields[info]}"), console=err, transient=False)
    task = None

    def update(p) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("searching", total=p.total, info="")
        best = "-" if p.best_accuracy is None else f"{p.best_accuracy:.3f}"
        eta = "" if p.eta_s is None else f", ~{p.eta_s / 60:.1f} min left"
        info = p.message or (f"best acc within budget {best}; {p.running} running, {p.over_budget} over budget, "
                             f"{p.failed} failed{eta}")
        bar.update(task, completed=p.done, total=p.total, info=info)

    def stop() -> None:
        if task is not None:
            bar.stop()

    return update, stop


def _print_result(res, profile_label: str) -> None:
    out.print(f"{res.evaluated} candidates trained, {res.failed} failed, {res.over_budget} over budget "
              f"(not trained) in {res.seconds / 60:.1f} min")
    if res.best_key:
        out.print(f"best within {res.budget_ms:.2f} ms on {profile_label}: proxy accuracy "
                  f"{res.best_accuracy:.4f}\n  {res.best_key}")
    else:
        out.print("no candidate within the budget finished training")
    out.print(f"report: {res.files['report.html']}")
    out.print(f"Pareto front: {res.files['pareto.json']}; study: {res.storage}")


@app.command("search")
@user_errors
def search_cmd(
    device: str = typer.Option("pixel7", "--device", "-d", help="Device profile name or YAML path."),
    space: str = typer.Option("mobilenetv3", "--space", "-s", help="Search space name or YAML path."),
    latency_ms: Optional[float] = typer.Option(None, "--latency-ms",
                                               help="Latency budget; default: the device's latency of "
                                                    "MobileNetV3-Small 1.0 (printed)."),
    trials: int = typer.Option(40, "--trials", "-n", help="Candidates to train (over-budget ones are free)."),
    workers: int = typer.Option(2, "--workers", "-w", help="Parallel Ray workers (1 CPU each)."),
    data: str = typer.Option("builtin", "--data", help="builtin, cifar10, or a path (.npz, folder, archive)."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, nsga2 or random."),
    objectives: str = typer.Option("acc,latency", "--objectives", help="acc,latency or acc,latency,size."),
    seed: int = typer.Option(0, "--seed"),
    out_dir: Path = typer.Option(Path("results"), "--out", help="Folder that holds run folders."),
    name: Optional[str] = typer.Option(None, "--name", help="Run folder name (default: space-device-time)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join an existing Ray cluster."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna RDB URL (default: study.db in the run)."),
    references: int = typer.Option(4, "--references", help="Reference networks to train for the report."),
    epochs: Optional[float] = typer.Option(None, "--proxy-epochs", help="Proxy training epochs (default 1)."),
    images: Optional[int] = typer.Option(None, "--proxy-images", help="Proxy training images per epoch (default 4000)."),
    no_distill: bool = typer.Option(False, "--no-distill", help="Stop after the search."),
) -> None:
    """Search a space for the most accurate candidates within a latency budget on a device."""
    import logging

    import optuna

    from nas.latency import load_device
    from nas.search import SearchConfig, resume_search, run_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray").setLevel(logging.ERROR)
    update, stop = _search_progress()
    try:
        if resume is not None:
            res = resume_search(resume, progress=update, trials=None, workers=None, ray_address=ray_address)
        else:
            proxy = {k: v for k, v in (("epochs", epochs), ("max_train_images", images)) if v is not None}
            cfg = SearchConfig(device=device, space=space, latency_ms=latency_ms, trials=trials, workers=workers,
                               data=data, sampler=sampler,
                               objectives=tuple(o.strip() for o in objectives.split(",") if o.strip()),
                               seed=seed, out=str(out_dir), name=name, ray_address=ray_address, storage=storage,
                               distill=not no_distill, references=references, proxy=proxy)
            cfg.validate()
            prof = load_device(device)
            if latency_ms is None:
                from nas.data import load_dataset
                from nas.search import default_budget

                ms, source = default_budget(prof, load_dataset(data, seed=seed).num_classes)
                err.print(f"latency budget {ms:.2f} ms: {source} (set one with --latency-ms)", markup=False)
            res = run_search(cfg, progress=update)
    finally:
        stop()
    from nas.search import load_config

    cfg, raw = load_config(res.run_dir / "config.yaml")
    _print_result(res, raw.get("device_label", ""))
    if cfg.distill:
        _distill(res.run_dir, "best", None, None, None, False)
        out.print(f"done. model: {res.run_dir / 'winner' / 'model.onnx'} (int8: model.int8.onnx, card: card.md); "
                  f"report: {res.files['report.html']}")


def _stage_progress():
    """A rich progress bar per stage name, fed by (stage, done, total) updates."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=err)
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    def stop() -> None:
        if tasks:
            bar.stop()

    return update, stop


def _distill(run_dir: Path, pick: str, teacher: Optional[Path], epochs: Optional[float],
             teacher_epochs: Optional[float], kd: bool, kd_teacher: Optional[str] = None) -> None:
    from nas.distill import DistillConfig, distill_run

    kw = {k: v for k, v in (("epochs", epochs), ("teacher_epochs", teacher_epochs),
                            ("teacher_net", kd_teacher)) if v is not None}
    cfg = DistillConfig(pick=pick, teacher=str(teacher) if teacher else None, kd=kd or kd_teacher is not None, **kw)
    cfg.validate()
    update, stop = _stage_progress()
    try:
        card = distill_run(run_dir, cfg, progress=update)
    finally:
        stop()
    pct = lambda v: "n/a" if v is None else f"{v * 100:.2f}%"  # noqa: E731
    out.print(f"winner: trial {card['trial']} {card['candidate']}")
    qual = "ESTIMATED " if card["provenance"] == "estimated" else ""
    out.print(f"{qual}predicted latency on {card['device_label']}: {card['predicted_latency_ms']:.3f} ms "
              f"(budget {card['latency_budget_ms']:.3f} ms)")
    out.print(f"test accuracy: fp32 {pct(card['test_accuracy_fp32'])}, int8 {pct(card['test_accuracy_int8'])}; "
              f"teacher {pct(card['teacher_accuracy'])}")
    h = card.get("host_latency_ms")
    if h:
        out.print(f"this host: fp32 {h['measured_fp32']:.2f} ms, int8 {h['measured_int8']:.2f} ms "
                  f"(x{h['speedup_int8']:.2f})")
    win = Path(run_dir) / "winner"
    out.print(f"model: {win / 'model.onnx'} and {win / 'model.int8.onnx'} (card: {win / 'card.md'})")


@app.command("distill")
@user_errors
def distill_cmd(
    run_dir: Path = typer.Argument(..., help="A run folder (results/<name>)."),
    pick: str = typer.Option("best", "--pick", help="best, knee, latency<=MS or trial=N."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="A teacher checkpoint (model.pt format)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Student epochs (default 5; 10 gained 9.3 points on CIFAR, BENCHMARKS.md)."),
    teacher_epochs: Optional[float] = typer.Option(None, "--teacher-epochs",
                                                   help="Teacher epochs (default twice the student's)."),
    kd: bool = typer.Option(False, "--kd", help="Distil from a teacher trained in the run (off by default: at equal "
                                                "compute, longer student training won in the benchmark)."),
    kd_teacher: Optional[str] = typer.Option(None, "--kd-teacher", help="The teacher --kd trains: largest (the "
                                             "space's largest candidate, default) or parent (the winner unpruned, "
                                             "float). Implies --kd."),
) -> None:
    """Train the run's winner (with --kd or --teacher: distilled), quantize and export it, and write its card."""
    _distill(run_dir, pick, teacher, epochs, teacher_epochs, kd, kd_teacher)


@app.command("report")
@user_errors
def report_cmd(run_dir: Path = typer.Argument(..., help="A run folder (results/<name>).")) -> None:
    """Regenerate trials.csv, pareto.json, report.html and pareto.png from the run's study."""
    import optuna

    from nas.report import regenerate

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    files = regenerate(run_dir)
    for f in files.values():
        out.print(f"wrote {f}")


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except NasError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc}", markup=False)
        sys.exit(USER_ERROR)
