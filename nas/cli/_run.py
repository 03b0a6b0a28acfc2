"""``nas search``, ``nas distill`` and ``nas report``: progress display over the library."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import optuna
import typer

from nas.api import distill_run, export_run, resume_search, run_search
from nas.cli._app import app, err, ms, out, progress_printer, user_errors
from nas.errors import DistillError, SearchError
from nas.report import overlay_runs, regenerate
from nas.run import RunContext, SearchConfig, read_run_config, resolve_run
from nas.supernet import SupernetBudget
from nas.train import ProxyBudget
from nas.winner import PICK_HELP, DistillConfig

S, D, P, SB = SearchConfig, DistillConfig, ProxyBudget, SupernetBudget  # the defaults live in the config dataclasses
# what `--resume` may change (nas.run.RESUME_OVERRIDES); any other option given is refused
RESUME_OPTIONS = ("resume", "trials", "workers", "ray_address", "no_distill", "allow_changed")


def _given(ctx: typer.Context, names=None) -> list:
    """The options of the command the user gave (on the command line or in the environment),
    not left at their defaults (click's parameter source)."""
    return [p for p in ctx.command.params if (names is None or p.name in names)
            and getattr(ctx.get_parameter_source(p.name), "name", "") in ("COMMANDLINE", "ENVIRONMENT")]


def _flag(p) -> str:
    return max(p.opts, key=len)


def _refuse_on_resume(ctx: typer.Context) -> None:
    bad = [_flag(p) for p in _given(ctx) if p.name not in RESUME_OPTIONS]
    if bad:
        raise SearchError(f"--resume continues a run as it was made: {', '.join(bad)} cannot change (only --trials, "
                          f"--workers, --ray-address, --no-distill and --allow-changed can; start a new run for the rest)")


def _per_stage_printer(unit: str):
    """A progress bar per stage (``progress(what, done, total)``), e.g. per split decoded."""
    bars: dict[str, object] = {}

    def update(what: str, done: int, total: int) -> None:
        if what not in bars:
            bars[what] = progress_printer(what, unit)
        bars[what](done, total)
    return update


def search_info(p) -> str:
    """The short text after the search's bar: what matters first, so that an 80-column terminal
    cuts the least useful part (counts of over-budget and failed trials only when non-zero)."""
    if p.message:
        return p.message
    parts = [f"~{p.eta_s / 60:.0f} min left" if p.eta_s is not None else "",
             "best -" if p.best_accuracy is None else f"best {p.best_accuracy:.3f}",
             f"{p.promoted} promoted" if p.promoted else "",
             f"{p.failed} failed" if p.failed else "", f"{p.over_budget} over budget" if p.over_budget else ""]
    return ", ".join(x for x in parts if x)


def _search_progress():
    """A rich progress bar fed by SearchProgress updates; returns (callback, stop)."""
    from rich.progress import BarColumn, Progress, TextColumn
    from rich.table import Column

    # fixed columns first; the info column takes what is left and is cut at its end, so a narrow
    # terminal loses the least useful counts, never the bar, the count or the time left
    bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(bar_width=16),
                   TextColumn("{task.completed}/{task.total} {task.fields[unit]}", markup=False),
                   TextColumn("{task.fields[info]}", markup=False,
                              table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
                   console=err, transient=False)
    task = None

    def update(p) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("searching", total=p.total, info="", unit="trials")
        if p.phase is not None:  # e.g. the supernet's training, before any trial
            what, done, total, unit = p.phase
            bar.update(task, description=what, completed=done, total=total, unit=unit, info=search_info(p))
            return
        bar.update(task, description="searching", completed=p.done, total=p.total, unit="trials",
                   info=search_info(p))

    def stop() -> None:
        if task is not None:
            bar.stop()

    return update, stop


def _print_result(res, ctx: RunContext) -> None:
    scored = ctx.config.proxy_kind == "supernet"
    out.print(f"{res.evaluated} candidates {'scored from the supernet' if scored else 'trained'}, {res.failed} "
              f"failed, {res.over_budget} over budget ({'not scored' if scored else 'not trained'}) in "
              f"{res.seconds / 60:.1f} min")
    what = "inherited-weight accuracy" if scored else "proxy accuracy"
    if ctx.multi:
        for t in ctx.devices:
            acc, key = res.best_by_device.get(t.name, (None, None))
            if key is None:
                out.print(f"{t.name}: no candidate within {ms(t.budget_ms)} ms finished training")
            else:
                out.print(f"best within {ms(t.budget_ms)} ms on {t.profile.label}: {what} {acc:.4f}\n  {key}")
    elif res.best_key:
        out.print(f"best within {ms(res.budget_ms)} ms on {ctx.meta.device_label} ({ctx.num_classes} classes): "
                  f"{what} {res.best_accuracy:.4f}\n  {res.best_key}")
    else:
        out.print("no candidate within the budget finished training")
    out.print(f"report: {res.files['report.html']}")
    out.print(f"Pareto front: {res.files['pareto.json']}; study: {res.storage}")


def _budgets(text: str | None, device: str) -> float | tuple[float, ...] | None:
    """--latency-ms as SearchConfig takes it: one number, or one per device (several devices)."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SearchError(f"--latency-ms must be a number of ms, or one per device comma-separated; "
                          f"got {text!r}") from None
    return values if "," in device or len(values) > 1 else values[0]


@app.command("search")
@user_errors
def search_cmd(
    cli: typer.Context,
    device: str = typer.Option(S.device, "--device", "-d", help="Device profile name or YAML path; several, "
                               "comma-separated (pixel7,pixel1,note10): one search, a front and a winner per device."),
    space: str = typer.Option(S.space, "--space", "-s", help="Search space name or YAML path."),
    latency_ms: Optional[str] = typer.Option(None, "--latency-ms", metavar="MS[,MS...]",
                                             help="Latency budget in ms; several devices: one per device, "
                                                  "comma-separated (3,12,8). Default: each device's latency of "
                                                  "MobileNetV3-Small 1.0 (printed)."),
    steer: str = typer.Option(S.steer, "--steer", metavar="constraints|objectives",
                              help="Several devices: how the sampler sees their budgets: "
                              "constraints (one per device, latency/budget) or objectives (one latency/budget "
                              "objective per device)."),
    memory_kb: Optional[float] = typer.Option(S.memory_kb, "--memory-kb", help="Peak memory budget at batch 1 "
                                              "(activations + weights, KB); over it, a candidate is not trained."),
    size_kb: Optional[float] = typer.Option(S.size_kb, "--size-kb", help="Model size budget (weights at their bit "
                                            "widths, KB)."),
    trials: int = typer.Option(S.trials, "--trials", "-n", help="Candidates to train (over-budget ones are free); "
                               "with --resume: more than the run has finished extends it."),
    workers: int = typer.Option(S.workers, "--workers", "-w", help="Parallel Ray workers (1 CPU each)."),
    data: str = typer.Option(S.data, "--data", help="builtin, cifar10, or a path (.npz, folder, archive)."),
    sampler: str = typer.Option(S.sampler, "--sampler", help="tpe, nsga2 or random."),
    objectives: str = typer.Option(",".join(S.objectives), "--objectives", help="acc,latency, then size and/or "
                                   "memory (e.g. acc,latency,memory)."),
    seed: int = typer.Option(S.seed, "--seed"),
    out_dir: Path = typer.Option(Path(S.out), "--out", help="Folder that holds run folders."),
    name: Optional[str] = typer.Option(S.name, "--name", help="Run folder name (default: space-device-time)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder (only --trials, "
                                          "--workers, --ray-address, --no-distill and --allow-changed may be given "
                                          "with it)."),
    ray_address: Optional[str] = typer.Option(S.ray_address, "--ray-address", help="Join an existing Ray cluster."),
    storage: Optional[str] = typer.Option(S.storage, "--storage", help="Optuna RDB URL (default: study.db in the "
                                          "run)."),
    references: int = typer.Option(S.references, "--references", help="Reference networks to train for the report."),
    epochs: float = typer.Option(P.epochs, "--proxy-epochs", help="Proxy training epochs."),
    images: Optional[int] = typer.Option(P.max_train_images, "--proxy-images", help="Proxy training images per "
                                         "epoch."),
    fidelity: str = typer.Option(S.fidelity, "--fidelity",
                                 help="halving: asynchronous successive halving (the best 1/eta of each rung "
                                      "train eta x longer, from their checkpoint); single: one proxy budget."),
    eta: int = typer.Option(S.eta, "--eta", help="Halving: budget ratio between rungs, and 1/eta promoted."),
    rungs: int = typer.Option(S.rungs, "--rungs", help="Halving: rungs, the base one included."),
    rank_by: str = typer.Option(S.rank_by, "--rank-by", help="What a rung ranks by: accuracy or val_loss."),
    promote: str = typer.Option(S.promote, "--promote", help="Halving: promotion order, pareto (Pareto rank, then "
                                "crowding) or bands (the signal within latency bands)."),
    accelerator: str = typer.Option(S.accelerator, "--accelerator", help="Where trials train: auto (CUDA when "
                                    "torch sees a GPU), cpu or cuda."),
    trials_per_gpu: int = typer.Option(S.trials_per_gpu, "--trials-per-gpu", help="Trials sharing one GPU (each "
                                       "asks Ray for 1/K of it)."),
    proxy_kind: str = typer.Option(S.proxy_kind, "--proxy", help="How a trial's accuracy is had: supernet (a "
                                   "weight-sharing supernet trained once, each candidate scored from the weights it "
                                   "inherits) or train (each candidate trained briefly)."),
    supernet_epochs: float = typer.Option(SB.epochs, "--supernet-epochs", help="--proxy supernet: epochs of "
                                          "supernet training (over --proxy-images images each)."),
    supernet_limit: float = typer.Option(SB.member_limit, "--supernet-limit", help="--proxy supernet: its members "
                                         "are the candidates within this many times the latency budget (at least 1)."),
    supernet_workers: int = typer.Option(S.supernet_workers, "--supernet-workers", help="--proxy supernet: Ray "
                                         "Train workers training the supernet data-parallel (1: one Ray task)."),
    no_distill: bool = typer.Option(not S.distill, "--no-distill", help="Stop after the search."),
    allow_changed: bool = typer.Option(False, "--allow-changed", help="With --resume: use the run's space file "
                                       "and data even where they changed since it started (refused otherwise)."),
) -> None:
    """Search a space for the most accurate candidates within a latency budget on a device."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray").setLevel(logging.ERROR)
    if resume is not None:
        _refuse_on_resume(cli)
        ctx = None
        run = resume
    else:
        if allow_changed:
            raise SearchError("--allow-changed goes with --resume (a new run records what it is made from)")
        given = {p.name for p in _given(cli, ("epochs", "images", "supernet_epochs", "supernet_limit"))}
        proxy = {k: v for k, v, n in (("epochs", epochs, "epochs"), ("max_train_images", images, "images"))
                 if n in given}
        supernet = {k: v for k, v, n in (("epochs", supernet_epochs, "supernet_epochs"),
                                         ("member_limit", supernet_limit, "supernet_limit")) if n in given}
        if "images" in given:  # the supernet trains on the same images per epoch as the short proxy
            supernet["max_train_images"] = images
        cfg = SearchConfig(device=device, space=space, latency_ms=_budgets(latency_ms, device), memory_kb=memory_kb,
                           size_kb=size_kb, steer=steer,
                           trials=trials, workers=workers,
                           data=data, sampler=sampler,
                           objectives=tuple(o.strip() for o in objectives.split(",") if o.strip()),
                           seed=seed, out=str(out_dir), name=name, ray_address=ray_address, storage=storage,
                           distill=not no_distill, references=references, proxy=proxy, fidelity=fidelity,
                           eta=eta, rungs=rungs, rank_by=rank_by, promote=promote, accelerator=accelerator,
                           trials_per_gpu=trials_per_gpu, proxy_kind=proxy_kind, supernet=supernet,
                           supernet_workers=supernet_workers)
        ctx = resolve_run(cfg, progress=_per_stage_printer("images"))
        if latency_ms is None:
            for t in ctx.devices:
                on = f" on {t.name}" if ctx.multi else ""
                err.print(f"latency budget{on} {ms(t.budget_ms)} ms for {ctx.num_classes} classes: {t.budget_source} "
                          f"(set one with --latency-ms)")
        for note in ctx.budget_notes:  # how rare a memory or size budget is among sampled candidates
            err.print(note, markup=False)
    update, stop = _search_progress()
    try:
        if ctx is None:
            given = {p.name for p in _given(cli)}
            res = resume_search(run, progress=update, data_progress=_per_stage_printer("images"),
                                allow_changed=allow_changed, trials=trials if "trials" in given else None,
                                workers=workers if "workers" in given else None, ray_address=ray_address,
                                distill=False if no_distill else None)
        else:
            res = run_search(ctx, progress=update)
    finally:
        stop()
    ctx = res.context
    _print_result(res, ctx)
    if ctx.config.distill:
        # the search's own winner: a resumed search replaces the winner it trained before
        d = DistillConfig(accelerator=ctx.config.accelerator, force=True)
        winners = "a winner per device (one network winning on several is trained once)" if ctx.multi else \
            "the winner"
        out.print(f"training {winners} for {d.epochs:g} epochs on the whole training split at its own side, then "
                  f"exporting ONNX and LiteRT files (minutes; --no-distill stops after the search)", markup=False)
        for name in ctx.device_names() or (None,):
            if name is not None:
                out.print(f"device {name}:")
            _distill(ctx, replace(d, device=name))
        where = res.run_dir / "winner" / ("<device>" if ctx.multi else "")
        out.print(f"done. model: {where / 'model.onnx'} (int8: model.int8.onnx, card: card.md); "
                  f"report: {res.files['report.html']}")
    else:
        out.print(f"next: nas distill {res.run_dir}  (trains, exports and documents the winner)")


UNITS = (("training", "steps"), ("distilling", "steps"), ("fine-tuning", "steps"), ("exporting", "files"),
         ("timing", "models"), ("resizing", "images"), ("decoding", "images"), ("counting", "images"))


def _stage_progress():
    """A rich progress bar per stage name, fed by (stage, done, total) updates."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(bar_width=16),
                   TextColumn("{task.completed}/{task.total} {task.fields[unit]}", markup=False),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=err)
    tasks: dict[str, int] = {}
    if not err.is_terminal:  # a log file or CI: bars draw nothing, so each stage says when it starts and ends
        printers: dict[str, Any] = {}

        def plain(stage: str, done: int, total: int) -> None:
            unit = next((u for prefix, u in UNITS if stage.startswith(prefix)), "")
            printers.setdefault(stage, progress_printer(stage, unit))(done, total)
        return plain, lambda: None

    def update(stage: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()
        if stage not in tasks:
            unit = next((u for prefix, u in UNITS if stage.startswith(prefix)), "")
            tasks[stage] = bar.add_task(stage, total=total, unit=unit)
        bar.update(tasks[stage], completed=done, total=total)

    def stop() -> None:
        if tasks:
            bar.stop()

    return update, stop


def _distill(run: Path | RunContext, cfg: DistillConfig, allow_changed: bool = False) -> None:
    cfg.validate()
    update, stop = _stage_progress()
    try:
        card = distill_run(run, cfg, progress=update, allow_changed=allow_changed)
    finally:
        stop()
    pct = lambda v: "n/a" if v is None else f"{v * 100:.2f}%"  # noqa: E731
    out.print(f"winner: trial {card.trial} {card.candidate}")
    if card.copied_from:
        out.print(f"the same trial as {card.copied_from}/, trained with the same recipe: {card.copied_from}/ already "
                  f"holds it, copied to {card.folder}/ (not retrained)", markup=False)
    qual = "ESTIMATED " if card.provenance == "estimated" else ""
    out.print(f"{qual}predicted latency on {card.device_label}: {card.predicted_latency_ms:.3f} ms "
              f"(budget {card.latency_budget_ms:.3f} ms; {card.num_classes} classes)")
    teacher = "" if card.teacher is None else f"; teacher {pct(card.teacher_accuracy)}"
    out.print(f"test accuracy: fp32 {pct(card.test_accuracy_fp32)}, int8 {pct(card.test_accuracy_int8)}{teacher}")
    h = card.host_latency_ms
    if h:
        out.print(f"this host: fp32 {h.measured_fp32:.2f} ms, int8 {h.measured_int8:.2f} ms "
                  f"(x{h.speedup_int8:.2f})")
    run_dir = run.run_dir if isinstance(run, RunContext) else Path(run)
    win = run_dir / card.folder
    out.print(f"model: {win / 'model.onnx'} and {win / 'model.int8.onnx'} (card: {win / 'card.md'})")
    _print_files(card.tflite, win, "LiteRT")
    out.print(f"ship {card.ship}", markup=False)
    out.print(f"report: {run_dir / 'report.html'} (regenerated)")


def _print_files(section, win: Path, runtime: str, show_note: bool = True) -> None:
    """A card's LiteRT or ExecuTorch section: its files and test accuracies, or why there are none."""
    pct = lambda v: "n/a" if v is None else f"{v * 100:.2f}%"  # noqa: E731
    for e in section.errors:
        err.print(f"{runtime} export failed: {e}", markup=False)
    if section.written:
        out.print(f"{runtime}: {', '.join(str(win / f) for f in section.files)}; test accuracy fp32 "
                  f"{pct(section.test_accuracy_fp32)}, int8 {pct(section.test_accuracy_int8)}", markup=False)
    elif show_note and section.note:
        out.print(f"{runtime}: {section.note}", markup=False)


@app.command("export")
@user_errors
def export_cmd(
    run_dir: Path = typer.Argument(..., help="A run folder whose winner `nas distill` trained."),
    formats: str = typer.Option("onnx,tflite", "--format", help="onnx, tflite, pte (ExecuTorch, needs the executorch "
                                "extra), comma-separated."),
    folder: str = typer.Option("winner", "--folder", help="The winner's folder in the run (winners/<pick> for "
                                                          "other picks)."),
    allow_changed: bool = typer.Option(False, "--allow-changed", help="Use the run's data even where it changed "
                                       "since the run started (refused otherwise)."),
) -> None:
    """Re-export a run's trained winner (its model.pt) as ONNX, LiteRT and/or ExecuTorch, and update its card."""
    from nas.winner import parse_formats

    fmts = parse_formats(formats)
    update, stop = _stage_progress()
    try:
        card = export_run(run_dir, folder, fmts, progress=update, allow_changed=allow_changed)
    finally:
        stop()
    win = Path(run_dir) / folder
    if "onnx" in fmts:
        out.print(f"ONNX: {win / 'model.onnx'}, {win / 'model.int8.onnx'}; test accuracy fp32 "
                  f"{card.test_accuracy_fp32 * 100:.2f}%, int8 {card.test_accuracy_int8 * 100:.2f}%", markup=False)
    if "tflite" in fmts:
        _print_files(card.tflite, win, "LiteRT")
    if "pte" in fmts:
        _print_files(card.pte, win, "ExecuTorch", show_note=False)
    out.print(f"ship {card.ship}", markup=False)
    out.print(f"report: {Path(run_dir) / 'report.html'} (regenerated)")


@app.command("distill")
@user_errors
def distill_cmd(
    run_dir: Path = typer.Argument(..., help="A run folder (results/<name>)."),
    pick: str = typer.Option(D.pick, "--pick", help=PICK_HELP),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="A teacher checkpoint (model.pt format), or "
                                           "none: no distillation, even with --kd."),
    no_inherit: bool = typer.Option(not D.inherit, "--no-inherit", help="In a run with a supernet: train the winner "
                                    "from scratch, as in a run without one (by default it starts from the weights "
                                    "it inherits; with --kd it is distilled from the supernet's largest member)."),
    epochs: float = typer.Option(D.epochs, "--epochs", help="Student epochs (10 gained 9.3 points over 5 on CIFAR, "
                                 "BENCHMARKS.md)."),
    teacher_epochs: Optional[float] = typer.Option(D.teacher_epochs, "--teacher-epochs",
                                                   help="Teacher epochs (default twice the student's)."),
    kd: bool = typer.Option(D.kd, "--kd", help="Distil from a teacher trained in the run, or in a run with a supernet "
                                               "from its largest member (off by default: at equal compute, longer "
                                               "student training won in the benchmark)."),
    kd_teacher: Optional[str] = typer.Option(None, "--kd-teacher", help=f"The teacher --kd trains: largest (the "
                                             f"space's largest candidate; in a run with a supernet, its largest "
                                             f"member, trained already) or parent (the winner unpruned, float); "
                                             f"default {D.teacher_net}. Implies --kd."),
    out_name: Optional[str] = typer.Option(D.out, "--out", help="Folder in the run for this winner (default: winner/ "
                                           "for best, winners/<pick>/ for the other rules; a run on several devices: "
                                           "winner/<device>/ and winners/<device>/<pick>/)."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="A run on several devices: the device whose "
                                         "winner to train (picked at its budget); default: each device in turn."),
    force: bool = typer.Option(D.force, "--force", help="Replace that folder if it holds a winner already."),
    own_side_epochs: float = typer.Option(D.own_side_epochs, "--own-side-epochs", help="Fine-tuning epochs at the "
                                          "candidate's own input side before export (0: only batch-norm statistics "
                                          "are re-estimated there)."),
    start: str = typer.Option(D.start, "--start", help="scratch: train --epochs from scratch; auto: continue "
                              "from the weights a --fidelity halving search kept for the trial (cheaper; "
                              "3.9 points lower on the CIFAR benchmark)."),
    continue_epochs: float = typer.Option(D.continue_epochs, "--continue-epochs",
                                          help="Epochs when continuing from search weights."),
    accelerator: str = typer.Option(D.accelerator, "--accelerator", help="Where the winner (and teacher) train: "
                                    "auto (CUDA when torch sees a GPU), cpu or cuda."),
    own_side_lr: float = typer.Option(D.own_side_lr, "--own-side-lr", help="Learning rate of the fine-tuning at "
                                      "the candidate's own side."),
    allow_changed: bool = typer.Option(False, "--allow-changed", help="Use the run's space file and data even where "
                                       "they changed since the run started (refused otherwise)."),
) -> None:
    """Train the run's winner (with --kd or --teacher: distilled), quantize and export it, and write its card."""
    cfg = DistillConfig(pick=pick, teacher=str(teacher) if teacher else None, epochs=epochs,
                        teacher_epochs=teacher_epochs, kd=kd or kd_teacher is not None,
                        teacher_net=kd_teacher or D.teacher_net, out=out_name, force=force,
                        own_side_epochs=own_side_epochs, start=start, continue_epochs=continue_epochs,
                        accelerator=accelerator, own_side_lr=own_side_lr, inherit=not no_inherit, device=device)
    cfg.validate()  # a bad --pick is named before the folder is read
    devices = [m.name for m in read_run_config(run_dir)[1].devices] if device is None else []
    if devices and out_name is not None:
        raise DistillError("--out names one folder: with a run on several devices give --device too")
    for name in devices or [device]:
        if devices:
            out.print(f"device {name}:")
        _distill(run_dir, replace(cfg, device=name), allow_changed)


@app.command("report")
@user_errors
def report_cmd(run_dirs: list[Path] = typer.Argument(..., help="A run folder (results/<name>); several: their fronts "
                                                     "overlaid on one device."),
               device: Optional[str] = typer.Option(None, "--device", "-d", help="Several runs: the device whose "
                                                    "fronts to overlay (default: the first run's first device)."),
               out_file: Optional[Path] = typer.Option(None, "--out", help="Several runs: the page to write "
                                                       "(default: fronts-<device>.html here; a .png beside it).")
               ) -> None:
    """Regenerate trials.csv, pareto.json, report.html and pareto.png from the run's study; with
    several runs, overlay their fronts on one device."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if len(run_dirs) == 1 and device is None and out_file is None:
        files = regenerate(run_dirs[0])
        for f in files.values():
            out.print(f"wrote {f}")
        return
    fronts, files = overlay_runs(run_dirs, device, out_file)
    for f in fronts:
        out.print(f"{f.run}: {len(f.front)} front points on {f.device} (budget {f.budget_ms:.2f} ms), "
                  f"hypervolume {f.hypervolume:.4f}", markup=False)
    for f in files.values():
        out.print(f"wrote {f}")
