"""The winner of a run: selection, a teacher, knowledge distillation, export and its card.

``distill_run(run_dir)`` picks a trial (``pick_winner``), trains or loads a teacher, trains
the winner as a student (temperature-scaled KL to the teacher plus cross-entropy, its pruned
structure real, fake-quantized at its bit widths), and writes ``<run>/winner/``:
``model.pt`` (a state dict that ``torch.load(weights_only=True)`` reads, with the candidate
key), ``model.onnx`` (fp32, outputs checked against torch), ``model.int8.onnx``
(onnxruntime static QDQ, calibrated on training images), ``card.json`` and ``card.md``.

The teacher and the student train at the winner's proxy input side (the dataset's side scaled
by the candidate's resolution, ``nas.train._proxy.proxy_resolution``: cheap); the student's weights then
move to the candidate's own input side (fine-tuned there, batch-norm re-estimated), and that is
what is exported, scored and timed: the network the device profile priced.

A run whose folder holds a trained supernet (``nas.supernet``: ``<run>/supernet/``) gives the
winner its start (``inherit``, on by default): the student starts from the weights it inherits
(``Supernet.extract`` at its proxy side, the side the supernet trained it at). With ``kd`` it is
also distilled from the supernet's largest member, trained already (no teacher is trained here);
off by default, as in a run without a supernet: on the CIFAR-10 subset the largest member of the
default supernet scored below what the student reaches alone and distilling from it cost the
winner 4.0 and 1.2 points (seeds 0 and 1; BENCHMARKS.md, issue 26). The largest member trained
at its own proxy side, so the teacher sees each batch resized to that side (``_Resized``: the
antialiased bilinear resize the supernet's training used), not a network rebuilt at the
student's side with other strides.
``teacher="none"`` never distils; ``inherit=False`` ignores the supernet (the recipe of a run
without one)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nas._version import __version__
from nas.errors import DistillError, NasError
from nas.export import export_onnx, onnx_accuracy_batches, ort_session, time_session
from nas.latency import load_device
from nas.models import apply_fake_quant, build_model, strip_fake_quant
from nas.run import DeviceTarget, RunContext, RunFolder, open_run, read_run_config
from nas.search import bit_counts, open_study, read_trials, rows_for_device, trial_weights
from nas.space import Candidate, SearchSpace, float_bytes, memory_bytes
from nas.supernet import Supernet, load_supernet, read_training
from nas.train import (
    ProxyBudget,
    describe_device,
    deterministic_cuda,
    evaluate_batches,
    load_checkpoint,
    recalibrate_bn,
    resolve_accelerator,
    save_checkpoint,
    train_model,
)
from nas.winner._card import (
    Distillation,
    HostLatency,
    InputSpec,
    MemoryFacts,
    TargetLatency,
    TfliteSection,
    TrainedAt,
    TrainingSeconds,
    WinnerCard,
)
from nas.winner._pick import parse_rule, pick_winner, winner_folder
from nas.winner._ship import calibration_images, tflite_section

# pick_winner, onnx_accuracy_batches: from nas.winner._pick, nas.export._onnx
__all__ = ["DistillConfig", "distill_run", "recipe_digest", "NO_TEACHER"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)
NO_TEACHER = "none"  # DistillConfig.teacher / --teacher none: no distillation, whatever the run holds


@dataclass(frozen=True)
class DistillConfig:
    pick: str = "best"  # best | knee | latency<=X | trial=N
    # a checkpoint path (model.pt format); None: with kd, the supernet's largest member in a run that
    # has a supernet (and inherit), else trained here (teacher_net); "none": no distillation at all
    teacher: str | None = None
    # Student epochs over the whole training split. 5 keeps the default command within its
    # 10 minutes; on the CIFAR-10 benchmark 10 epochs gained 9.3 test points over 5, more than
    # any teacher gave (BENCHMARKS.md, issue 6): pass --epochs 10 when time allows.
    epochs: float = 5.0
    teacher_epochs: float | None = None  # None: twice the student's epochs
    # Which network is trained here as the teacher when kd is on and no checkpoint is given:
    # "largest", the space's largest float unpruned candidate (the classic choice, and slow: 10M
    # parameters for mobilenetv3), or "parent", the winner itself unpruned and float (+2.6 test
    # points over no KD at the same student epochs on the CIFAR benchmark).
    teacher_net: str = "largest"
    # Off by default: at equal compute, training the student longer beat every teacher tried
    # (BENCHMARKS.md, issue 6); --kd, --kd-teacher or --teacher turn it on.
    kd: bool = False
    temperature: float = 4.0
    alpha: float = 0.7
    batch_size: int = 64
    lr: float = 0.1
    threads: int = 2
    calibration_images: int = 256
    measure_host: bool = True
    tflite: bool = True  # model.tflite / model.int8.tflite when the litert extra is installed
    accelerator: str = "auto"  # where the teacher and the winner train (nas.train._accel); exports run on the CPU
    seed: int | None = None  # None: the run's seed
    # The exported network is the candidate at its own input side, the network the device profile
    # priced. It trains at the proxy side (cheap: BENCHMARKS.md, issue 13 groundwork), then its
    # weights, whose shapes do not depend on the side, move to the own side: own_side_epochs of
    # fine-tuning at own_side_lr, then batch-norm statistics re-estimated there. 0.05 beat the
    # earlier 0.01 on all three winners tried, by 3.6 to 13.0 test points at the same cost
    # (BENCHMARKS.md, "The own-side learning rate").
    own_side_epochs: float = 1.0
    own_side_lr: float = 0.05
    # A search with successive halving keeps the front's top-rung weights (nas.search._halving); with
    # start="auto" the winner continues from them for continue_epochs at continue_lr (a warm
    # restart) instead of training cfg.epochs from scratch. Not the default: on the CIFAR-10
    # subset continuing 2 epochs scored 41.3% against 45.2% from scratch (3 seeds, BENCHMARKS.md).
    start: str = "scratch"  # scratch | auto: the trial's checkpoint when the run kept one
    continue_epochs: float = 2.0
    continue_lr: float = 0.05
    # A run with a trained supernet (<run>/supernet/): the winner starts from the weights it
    # inherits (with kd: distilled from the supernet's largest member; module docstring). False:
    # the supernet is ignored, the winner trains as in a run without one (to measure what it gives).
    inherit: bool = True
    out: str | None = None  # folder inside the run; None: winner_folder(pick) (several devices: per device)
    force: bool = False  # replace a folder that holds a winner already
    # a run on several devices: the device (profile name) whose winner this is, picked at its budget
    # and written to winner/<device>/; None on a run on one device
    device: str | None = None

    def validate(self) -> None:
        try:
            resolve_accelerator(self.accelerator)  # --accelerator cuda without a GPU: before any work
        except NasError as exc:
            raise DistillError(str(exc)) from None
        if not (self.epochs > 0 and (self.teacher_epochs is None or self.teacher_epochs > 0)):
            raise DistillError("--epochs and --teacher-epochs must be positive")
        if not (self.own_side_epochs >= 0 and self.own_side_lr > 0):
            raise DistillError("--own-side-epochs must be 0 or more and its learning rate positive")
        if self.start not in ("auto", "scratch"):
            raise DistillError(f"--start must be auto or scratch, got {self.start!r}")
        if not (self.continue_epochs > 0 and self.continue_lr > 0):
            raise DistillError("--continue-epochs and its learning rate must be positive")
        if self.teacher_net not in ("largest", "parent"):
            raise DistillError(f"unknown teacher {self.teacher_net!r}: use largest or parent")
        if self.threads < 1:
            raise DistillError("threads must be at least 1")
        if not 0 <= self.alpha <= 1 or self.temperature <= 0:
            raise DistillError("alpha must be in [0, 1] and temperature positive")
        parse_rule(self.pick)
        if self.out is not None and (not self.out or self.out.startswith("/") or ".." in Path(self.out).parts):
            raise DistillError(f"--out must be a folder name inside the run, got {self.out!r}")

    @property
    def no_teacher(self) -> bool:
        return self.teacher == NO_TEACHER

    @property
    def teacher_checkpoint(self) -> str | None:
        return None if self.no_teacher else self.teacher

    @property
    def folder(self) -> str:
        return self.out or winner_folder(self.pick)

    @property
    def teacher_train_epochs(self) -> float:
        return 2 * self.epochs if self.teacher_epochs is None else self.teacher_epochs


PICK_HELP = ("Which trained trial within the budget becomes the winner: best (the most accurate), "
             "knee (the point of the accuracy/latency front farthest above the straight line between its "
             "fastest and its most accurate ends: where more latency stops buying much accuracy), "
             "latency<=MS (the most accurate at or below MS ms), or trial=N (that trial, as numbered in "
             "report.html and trials.csv).")


# ----------------------------------------------------------------------------- training

def _train(cand: Candidate, dataset, epochs: float, cfg: DistillConfig, teacher=None, quantize: bool = True,
           progress: Progress | None = None, stage: str = "training", init=None, state: dict | None = None,
           continued: bool = True):
    """Build ``cand`` at the dataset's side, train it, re-estimate BN; (model, seconds).
    ``init(model)``, if given, sets the starting weights (benchmarks try L1-norm channel
    selection from a trained parent this way) instead of a random init. ``state``: a
    fake-quantized state dict to start from: a search checkpoint continued (``continued``:
    trained ``epochs`` at ``cfg.continue_lr`` with a short warm-up), or the weights a supernet
    gives (``continued=False``: the usual recipe, ``cfg.lr`` and its warm-up)."""
    torch.manual_seed(cfg.seed)
    model = build_model(cand, dataset.num_classes, dataset.in_channels, resolution=dataset.resolution)
    if init is not None:
        init(model)
    if quantize:
        apply_fake_quant(model)
    if state is not None:
        model.load_state_dict(state)
    device = resolve_accelerator(cfg.accelerator)
    model = model.to(device=torch.device(device), memory_format=torch.channels_last)
    cont = state is not None and continued
    budget = ProxyBudget(epochs=epochs, max_train_images=None, batch_size=cfg.batch_size,
                         lr=cfg.continue_lr if cont else cfg.lr,
                         warmup_fraction=0.1 if cont else 0.25, threads=cfg.threads, device=device)
    t0 = time.perf_counter()
    try:
        train_model(model, dataset, budget, cfg.seed, teacher=teacher, kd_temperature=cfg.temperature,
                    kd_alpha=cfg.alpha, progress=(lambda d, t: progress(stage, d, t)) if progress else None)
    except FloatingPointError as exc:
        raise DistillError(f"{stage} of {cand.key} diverged: {exc}; try a lower learning rate") from None
    recalibrate_bn(model, dataset, 8, cfg.seed)
    return model.eval(), time.perf_counter() - t0


def _to_own_side(cand: Candidate, trained, data, cfg: DistillConfig, progress: Progress | None):
    """The trained network rebuilt at ``data``'s side (the candidate's own: its early strides
    back), same weights, fine-tuned there and its batch-norm statistics re-estimated; (model, s)."""
    model = build_model(cand, data.num_classes, data.in_channels, resolution=data.resolution)
    apply_fake_quant(model)
    model.load_state_dict(trained.state_dict())
    device = resolve_accelerator(cfg.accelerator)
    model = model.to(device=torch.device(device), memory_format=torch.channels_last)
    t0 = time.perf_counter()
    if cfg.own_side_epochs > 0:
        budget = ProxyBudget(epochs=cfg.own_side_epochs, max_train_images=None, batch_size=cfg.batch_size,
                             lr=cfg.own_side_lr, warmup_fraction=0.1, threads=cfg.threads, device=device)
        stage = f"fine-tuning the winner at {data.resolution} px"
        try:
            train_model(model, data, budget, cfg.seed + 1,
                        progress=(lambda d, t: progress(stage, d, t)) if progress else None)
        except FloatingPointError as exc:
            raise DistillError(f"{stage} diverged: {exc}; try a lower --own-side-lr") from None
    recalibrate_bn(model, data, 8, cfg.seed)
    return model.eval(), time.perf_counter() - t0


def _accuracy(model, data) -> float:
    """Test accuracy of a torch model, the split read a batch at a time."""
    return evaluate_batches(model, data.eval_batches("test"))


def _teacher(space, dataset, cfg: DistillConfig, cache: Path, progress: Progress | None,
             student: Candidate | None = None) -> tuple[Any, dict]:
    """The user's checkpoint, or a float teacher trained here (cached in the run folder per
    key, input side, epochs and seed): the space's largest candidate, or with
    ``cfg.teacher_net == "parent"`` the student candidate unpruned."""
    if cfg.teacher_checkpoint:
        model, blob = load_checkpoint(cfg.teacher_checkpoint, space)
        if blob["num_classes"] != dataset.num_classes or blob["in_channels"] != dataset.in_channels:
            raise DistillError(f"teacher {cfg.teacher} has {blob['num_classes']} classes and "
                               f"{blob['in_channels']} input channels; the data has {dataset.num_classes} "
                               f"and {dataset.in_channels}")
        return model, {"key": blob["key"], "source": str(cfg.teacher_checkpoint), "seconds": 0.0}
    if cfg.teacher_net == "parent":
        if student is None:
            raise DistillError("a parent teacher needs the student candidate")
        cand = student.unpruned().replace_bits(32)
        what = "the winner unpruned, float, trained in this run"
    else:
        cand = space.largest()
        what = "the space's largest float candidate, trained in this run"
    epochs = cfg.teacher_train_epochs
    digest = hashlib.sha1(cand.key.encode()).hexdigest()[:8]
    tag = f"{cfg.teacher_net}-{digest}-{dataset.resolution}px-{epochs:g}ep-seed{cfg.seed}"
    path = cache / f"teacher-{tag}.pt"
    if path.is_file():
        model, blob = load_checkpoint(path, space)
        if blob["key"] == cand.key and blob["num_classes"] == dataset.num_classes:
            return model, {"key": cand.key, "source": f"{what} (cached {path.name})",
                           "seconds": blob.get("seconds", 0.0)}
    model, secs = _train(cand, dataset, epochs, cfg, quantize=False, progress=progress,
                         stage="training the teacher")
    save_checkpoint(path, model, cand, dataset, dataset.resolution, {"seconds": secs})
    return model, {"key": cand.key, "source": what, "seconds": secs}


# ----------------------------------------------------------------------------- the recipe

# What a winner's files are a function of, besides its trial and the run's data: every DistillConfig
# field but where the files go (pick, out, force) and where and how fast it trains (accelerator,
# threads: the same recipe, up to floating-point rounding).
_RECIPE_FIELDS = ("epochs", "inherit", "teacher_net", "kd", "temperature", "alpha", "batch_size", "lr", "calibration_images",
                  "measure_host", "tflite", "seed", "own_side_epochs", "own_side_lr", "start", "continue_epochs",
                  "continue_lr")


def recipe_digest(cfg: DistillConfig, key: str, data: str, supernet: str | None = None) -> str:
    """The digest of the final training's recipe (``cfg``, its seed resolved) for the candidate
    ``key`` on ``data`` (the run's dataset and its digest) and the ``supernet`` it inherits from
    (its digest; None when it does not), kept on the card: two picks that resolve to the same
    trial with the same digest would train the same files."""
    teacher = cfg.teacher  # None, or "none" (no distillation)
    if cfg.teacher_checkpoint:
        teacher = hashlib.sha256(Path(cfg.teacher_checkpoint).read_bytes()).hexdigest()  # its weights, not its path
    recipe = {"hwnas": __version__, "candidate": key, "data": data, "teacher_epochs": cfg.teacher_train_epochs,
              "teacher": teacher, "supernet": supernet, **{f: getattr(cfg, f) for f in _RECIPE_FIELDS}}
    if supernet is not None:  # whether its largest member teaches (the default changed: a winner
        recipe["supernet_teacher"] = _supernet_teaches(cfg)  # distilled before must not pass for one without)
    return "sha256:" + hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _supernet_teaches(cfg: DistillConfig) -> bool:
    """In a run with a supernet the winner inherits from: whether its largest member is the
    teacher (``--kd``, unless another teacher is named or --teacher none)."""
    return cfg.kd and not cfg.no_teacher and not cfg.teacher_checkpoint and cfg.teacher_net != "parent"


def _trained_twin(run_dir: Path, trial: int, recipe: str, out_dir: Path) -> tuple[Path, WinnerCard] | None:
    """A winner folder of the run (``winner/``, ``winners/*/``, an ``--out`` folder) other than
    ``out_dir`` that holds ``trial`` trained with ``recipe``, all its files present."""
    def order(path: Path) -> tuple:  # winner/ first, then the other picks' folders, then --out folders
        rel = path.parent.relative_to(run_dir).as_posix()
        return not rel.startswith("winner"), not rel.startswith("winners/"), rel

    for path in sorted(winner_card_paths(run_dir), key=order):
        src = path.parent
        if src == out_dir or src.name.startswith("."):
            continue
        try:
            card = WinnerCard.load(path)
        except DistillError:
            continue
        if card.trial == trial and card.recipe == recipe and \
                all((src / f).is_file() for f in ("model.pt", "card.md", *card.files)):
            return src, card
    return None


def winner_card_paths(run_dir: Path) -> set[Path]:
    """The card.json of every winner folder of a run: winner/, winners/<rule>/, --out folders, and
    on several devices winner/<device>/ and winners/<device>/<rule>/."""
    return {*run_dir.glob("*/card.json"), *run_dir.glob("winners/*/card.json"), *run_dir.glob("winner/*/card.json"),
            *run_dir.glob("winners/*/*/card.json")}


def _device_facts(profile, cand: Candidate, num_classes: int, in_channels: int, target: DeviceTarget) -> dict:
    """The card's fields about the device it is priced on (a run on several devices: each
    device's folder has its own)."""
    return dict(device=profile.name,
                device_summary=f"{profile.name}, {profile.provenance} ({profile.source_sentence()}); "
                               f"{profile.validation_text()}",
                provenance=profile.provenance_for(cand, num_classes, in_channels),  # how many ops were timed
                device_label=profile.label, device_source=profile.source,
                predicted_latency_ms=profile.latency_ms(cand, num_classes=num_classes, in_channels=in_channels),
                latency_budget_ms=target.budget_ms, latency_budget_source=target.budget_source,
                target=TargetLatency(
                    runtime=profile.runtime, label=profile.label,
                    predicted_fp32=profile.latency_ms(cand.replace_bits(32), num_classes, in_channels),
                    predicted_int8=profile.latency_ms(cand.replace_bits(8), num_classes, in_channels)))


def _write_card(path: Path, card: WinnerCard) -> None:
    (path / "card.json").write_text(card.to_json())
    (path / "card.md").write_text(card.markdown())


def _copy_twin(run: RunFolder, run_dir: Path, src: Path, card: WinnerCard, out_dir: Path,
               cfg: DistillConfig, device: DeviceTarget | None = None, cand: Candidate | None = None) -> WinnerCard:
    """``src``'s files as ``out_dir`` (a copy under a hidden name, then renamed into place; with
    --force the folder it replaces goes only then), its card saying which pick it is and where
    the files came from. ``device`` (a run on several devices): the device the copy is the winner
    of; its card is that device's (``cand``'s latency, budget, provenance) and every card of the
    network lists the devices it serves."""
    copied = replace(card, pick=cfg.pick, folder=cfg.folder,
                     copied_from=card.copied_from or src.relative_to(run_dir).as_posix())
    if device is not None and cand is not None:
        serves = tuple(dict.fromkeys((*card.serves, device.name)))
        copied = replace(copied, serves=serves,
                         **_device_facts(device.profile, cand, card.num_classes, card.input.shape[1], device))
        for path in winner_card_paths(run_dir):  # the network's other folders say so too
            try:
                other = WinnerCard.load(path)
            except DistillError:
                continue
            if other.trial == card.trial and other.recipe == card.recipe and other.serves and \
                    path.parent != out_dir:
                _write_card(path.parent, replace(other, serves=serves))
    tmp = out_dir.parent / f".{out_dir.name}.copying"
    shutil.rmtree(tmp, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, tmp)
    (tmp / "card.json").write_text(copied.to_json())
    (tmp / "card.md").write_text(copied.markdown())
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    run.log(f"winner ({cfg.pick}): trial {card.trial} {card.candidate}, which {copied.copied_from}/ already holds "
            f"trained with the same recipe ({card.recipe}): copied to {cfg.folder}/, not retrained")
    return copied


# ----------------------------------------------------------------------------- the supernet

@dataclass(frozen=True)
class _Inheritance:
    """A run's trained supernet as the winner's start and, with kd, its teacher."""

    net: Supernet
    digest: str
    largest: Candidate  # the supernet's largest member (float, unpruned): the teacher


def _inheritance(run_dir: Path, space: SearchSpace, num_classes: int, in_channels: int,
                 cfg: DistillConfig) -> _Inheritance | None:
    """The run's supernet when it has a trained one and ``cfg.inherit``; else None."""
    if not cfg.inherit:
        return None
    record = read_training(run_dir)
    if record is None:
        return None
    net = load_supernet(run_dir, space)
    if (net.num_classes, net.in_channels) != (num_classes, in_channels):
        raise DistillError(f"the run's supernet has {net.num_classes} classes and {net.in_channels} input "
                           f"channels; the data has {num_classes} and {in_channels}")
    digest = net.digest()
    if record.get("digest") not in (None, digest):
        raise DistillError(f"{run_dir / 'supernet'}: weights.pt (digest {digest}) is not the supernet training.json "
                           f"describes ({record.get('digest')}); delete the folder to train the supernet again")
    try:
        largest = space.parse(record["training"]["largest"])
    except (KeyError, TypeError):
        raise DistillError(f"{run_dir / 'supernet' / 'training.json'} does not name the supernet's largest "
                           f"member") from None
    return _Inheritance(net.eval(), digest, largest)


class _Resized(nn.Module):
    """A network fed at the input side it was trained at: each batch is resized to ``side``
    first (antialiased bilinear, as the supernet's training resized each member's batch)."""

    def __init__(self, net: nn.Module, side: int):
        super().__init__()
        self.net = net
        self.side = side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.side:
            x = nn.functional.interpolate(x, size=(self.side, self.side), mode="bilinear", antialias=True,
                                          align_corners=False).contiguous(memory_format=torch.channels_last)
        return self.net(x)


def _supernet_teacher(inh: _Inheritance, side: int, data, cfg: DistillConfig) -> tuple[nn.Module, dict]:
    """The supernet's largest member at ``side`` (the side it trained at), fed ``data``'s
    batches resized to it; its batch-norm statistics, which the supernet's members share,
    re-estimated on those batches (as a trial's score does). Nothing is trained."""
    device = resolve_accelerator(cfg.accelerator)
    teacher = _Resized(inh.net.extract(inh.largest, side), side)
    teacher = teacher.to(device=torch.device(device), memory_format=torch.channels_last)
    recalibrate_bn(teacher, data, 8, cfg.seed)
    source = (f"the largest member of the run's supernet (digest {inh.digest}), trained with it, fed each batch "
              f"resized to its {side} px")
    return teacher.eval(), {"key": inh.largest.key, "source": source, "seconds": 0.0}


def _start_text(inh: _Inheritance | None, continued: str | None, teacher_key: str | None,
                supernet_teacher: bool) -> str:
    """Where the winner's weights came from, for its card (``TrainedAt.start``)."""
    if continued is not None:
        return continued
    if inh is None:
        return "from scratch"
    kd = ("no distillation" if teacher_key is None else
          f"distilled from its largest member {teacher_key}" if supernet_teacher else
          f"distilled from {teacher_key}")
    return f"initialised from the supernet (digest {inh.digest}), {kd}"


# ----------------------------------------------------------------------------- the run

def distill_run(run: str | Path | RunContext, cfg: DistillConfig | None = None,
                progress: Progress | None = None, allow_changed: bool = False) -> WinnerCard:
    """Pick, distil, export and document the winner of a run (a run folder, or the context of
    the search that just made it); returns the card. A run folder is opened with its own copy
    of the device profile and its recorded data, which must be unchanged unless
    ``allow_changed``; a ``cifar10`` run whose cache is gone fails, it never downloads."""
    cfg = cfg or DistillConfig()
    cfg.validate()
    if cfg.teacher_checkpoint and not Path(cfg.teacher_checkpoint).is_file():
        raise DistillError(f"checkpoint {cfg.teacher} not found (--teacher none: no distillation)")
    # the lock first: a run another process holds (a search still running) is "in use by pid N",
    # not judged by the trials it has finished so far
    if not isinstance(run, RunContext):
        read_run_config(run)  # a folder that is not a run is refused before its lock file is made
    with RunFolder(run.run_dir if isinstance(run, RunContext) else Path(run)) as folder:
        return _distill_locked(folder, run, cfg, progress, allow_changed)


def _device(ctx: RunContext, cfg: DistillConfig) -> DeviceTarget:
    """The device whose winner ``cfg`` asks for: on several devices, ``cfg.device`` (required);
    on one, the run's (``cfg.device``, if given, must name it)."""
    names = [t.name for t in ctx.devices]
    if ctx.multi and cfg.device is None:
        raise DistillError(f"this run searched for {len(names)} devices ({', '.join(names)}): choose one with "
                           f"--device")
    if cfg.device is not None and cfg.device not in names:
        raise DistillError(f"this run has no device {cfg.device!r}; its device(s): {', '.join(names)}")
    return ctx.target(cfg.device)


def _distill_locked(folder: RunFolder, run: str | Path | RunContext, cfg: DistillConfig,
                    progress: Progress | None, allow_changed: bool) -> dict:
    ctx = run if isinstance(run, RunContext) else open_run(run, progress, allow_changed=allow_changed,
                                                            download=False)
    run_dir, config, meta = ctx.run_dir, ctx.config, ctx.meta
    cfg = replace(cfg, seed=config.seed if cfg.seed is None else cfg.seed)
    study = open_study(meta.study_name, meta.storage)
    device = _device(ctx, cfg)
    if ctx.multi and cfg.out is None:
        cfg = replace(cfg, out=winner_folder(cfg.pick, device.name))
    budget_ms = device.budget_ms
    win = pick_winner(rows_for_device(read_trials(study), device.name if ctx.multi else None), budget_ms, cfg.pick)
    cand = ctx.space.parse(win.key)
    space, dataset, profile = ctx.space, ctx.dataset, device.profile
    res = ctx.proxy_side(cand)
    out_dir = run_dir / cfg.folder
    if (out_dir / "card.json").is_file() and not cfg.force:
        try:
            was = WinnerCard.load(out_dir / "card.json")
            what = f"the winner of trial {was.trial} (--pick {was.pick})"
        except DistillError:
            what = "a winner"
        raise DistillError(f"{out_dir} already holds {what}; pass --force to replace it, or --out NAME "
                           f"to keep both")
    trained = read_training(run_dir) if cfg.inherit else None  # the supernet the winner would inherit from
    recipe = recipe_digest(cfg, win.key, f"{meta.dataset} {meta.data_digest}",
                           supernet=trained.get("digest") if trained else None)
    twin = _trained_twin(run_dir, win.number, recipe, out_dir)
    if twin is not None:  # e.g. the knee is the best trial: winner/ already holds it
        return _copy_twin(folder, run_dir, *twin, out_dir, cfg, device if ctx.multi else None, cand)
    data = dataset.at_resolution(res, progress)  # images on disk: made once, unless the search made it
    inh = _inheritance(run_dir, space, data.num_classes, data.in_channels, cfg)  # refused before any file is made
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    if resolve_accelerator(cfg.accelerator) == "cuda":
        deterministic_cuda()
    t_start = time.perf_counter()
    try:
        with contextlib.nullcontext(folder) as run:  # held since distill_run began
            out_dir.mkdir(parents=True, exist_ok=True)
            run.log(f"winner ({cfg.pick}): trial {win.number} {win.key}")
            teacher, tinfo = (None, {"key": None, "source": "", "seconds": 0.0})
            supernet_teacher = inh is not None and _supernet_teaches(cfg)
            if supernet_teacher and inh is not None:
                teacher, tinfo = _supernet_teacher(inh, ctx.proxy_side(inh.largest), data, cfg)
            elif not cfg.no_teacher and (cfg.kd or cfg.teacher):
                (run_dir / "teachers").mkdir(exist_ok=True)
                teacher, tinfo = _teacher(space, data, cfg, run_dir / "teachers", progress, cand)
            if teacher is not None:
                tinfo["test_accuracy"] = _accuracy(teacher, data)
                run.log(f"teacher {tinfo['key']}: test accuracy {tinfo['test_accuracy']:.4f}")
            start = trial_weights(run_dir, win.number, data.resolution) if cfg.start == "auto" else None
            continued = None
            if start is not None:
                continued = f"continued from the search's rung-{win.rung} weights for {cfg.continue_epochs:g} epochs"
                run.log(f"the winner continues from its rung-{win.rung} weights (checkpoints/trial-{win.number}.pt)")
            elif inh is not None:  # the weights it inherits, at the side the supernet trained it at
                start = inh.net.extract(cand, data.resolution).state_dict()
            start_text = _start_text(inh if continued is None else None, continued, tinfo["key"], supernet_teacher)
            if inh is not None:
                run.log(f"the winner is {start_text}")
            student, secs = _train(cand, data, cfg.continue_epochs if continued else cfg.epochs, cfg,
                                   teacher=teacher, progress=progress, state=start, continued=continued is not None,
                                   stage=("continuing the winner" if continued else
                                          "distilling the winner" if teacher is not None else "training the winner"))
            proxy_side, proxy_acc = res, _accuracy(student, data)
            if cand.resolution != res:  # ship the priced network: the candidate at its own side
                res = cand.resolution
                data = dataset.at_resolution(res, progress)
                student, secs_own = _to_own_side(cand, student, data, cfg, progress)
                secs += secs_own
            acc_torch = _accuracy(student, data)
            save_checkpoint(out_dir / "model.pt", strip_fake_quant(student).eval().cpu(), cand, data, res,
                            {"teacher": tinfo["key"], "bits": win.bits})
            # exported and checked on the CPU as model.pt loads it, as `nas export` does: the trained
            # module is channels_last and orders its parameters otherwise, which moved the int8 .tflite
            # scales and the ONNX initializers' order (issue 25); now the files depend on model.pt only
            float_model, _ = load_checkpoint(out_dir / "model.pt", space)
            if progress:
                progress("exporting ONNX fp32 and int8", 0, 2)
            export_onnx(float_model, out_dir / "model.onnx", resolution=res)
            if progress:
                progress("exporting ONNX fp32 and int8", 1, 2)
            calib = calibration_images(data, cfg.calibration_images, cfg.seed)
            export_onnx(float_model, out_dir / "model.int8.onnx", resolution=res, int8=True, calibration=calib)
            if progress:
                progress("exporting ONNX fp32 and int8", 2, 2)
            acc_fp32 = onnx_accuracy_batches(out_dir / "model.onnx", data.eval_batches("test"))
            acc_int8 = onnx_accuracy_batches(out_dir / "model.int8.onnx", data.eval_batches("test"))
            shape = [1, data.in_channels, res, res]
            host = _host_latency(out_dir, shape, cand, data.num_classes, progress) if cfg.measure_host else None
            tfl = tflite_section(float_model, out_dir, shape, calib, lambda: data.eval_batches("test"), progress,
                                 cfg.seed, cand=cand if cfg.measure_host else None, num_classes=data.num_classes) \
                if cfg.tflite else TfliteSection(written=False, note="not asked for (--format onnx)")
            for err in tfl.errors:
                run.log(f"LiteRT: {err}; the ONNX files are written")
            card = WinnerCard(
                candidate=cand.key, trial=win.number, pick=cfg.pick, folder=cfg.folder, num_classes=data.num_classes,
                trained_at=TrainedAt(
                    proxy_side=proxy_side, proxy_side_test_accuracy=proxy_acc,
                    start=start_text,
                    supernet=inh.digest if inh is not None and continued is None else None,
                    own_side=cand.resolution,
                    own_side_epochs=cfg.own_side_epochs if proxy_side != cand.resolution else 0),
                **_device_facts(profile, cand, data.num_classes, data.in_channels, device),
                serves=(device.name,) if ctx.multi else (),
                host_latency_ms=host,
                macs=win.macs, params=win.params, bytes=win.bytes, bits=bit_counts(cand), keep=win.keep,
                memory=MemoryFacts(
                    at_bit_widths=memory_bytes(cand, win.bytes or 0, data.num_classes, data.in_channels),
                    fp32_file=memory_bytes(cand, float_bytes(float_model), data.num_classes, data.in_channels,
                                           float_model=True),
                    note="peak bytes at batch 1: the largest live activations plus the weights, computed from "
                         "the operator list (nas.space._memory)"),
                proxy_accuracy=win.accuracy, test_accuracy_torch=acc_torch, test_accuracy_fp32=acc_fp32,
                test_accuracy_int8=acc_int8,
                teacher=tinfo["key"], teacher_source=tinfo["source"], teacher_accuracy=tinfo.get("test_accuracy"),
                distillation=Distillation(
                    kd=teacher is not None, temperature=cfg.temperature, alpha=cfg.alpha, epochs=cfg.epochs,
                    teacher_epochs=0.0 if supernet_teacher else cfg.teacher_train_epochs,
                    teacher_net="supernet" if supernet_teacher else
                    cfg.teacher_net if teacher is not None and not cfg.teacher else None,
                    batch_size=cfg.batch_size, lr=cfg.lr, threads=cfg.threads,
                    trained_on=describe_device(resolve_accelerator(cfg.accelerator))),
                training_seconds=TrainingSeconds(teacher=tinfo["seconds"], student=secs,
                                                 total=time.perf_counter() - t_start),
                input=InputSpec(shape=(1, data.in_channels, res, res), dtype="float32", layout="NCHW",
                                resize=f"{res}x{res}, bilinear (antialiased), the whole image (no crop)",
                                mean=tuple(float(m) for m in data.mean), std=tuple(float(v) for v in data.std)),
                dataset=dataset.describe(),
                class_names=tuple(data.class_names),
                files={"model.pt": "state dict + key (torch.load(weights_only=True))",
                       "model.onnx": "fp32, outputs checked against torch (1e-4)",
                       "model.int8.onnx": "onnxruntime static QDQ int8, calibrated on "
                                          f"{len(calib)} training images", **tfl.files},
                calibration_images=int(len(calib)),
                calibration_seed=cfg.seed,
                tflite=tfl,
                created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                recipe=recipe,
            )
            run.write(f"{cfg.folder}/card.json", card.to_json())
            run.write(f"{cfg.folder}/card.md", card.markdown())
            run.log(f"winner exported to {out_dir}: test accuracy fp32 {acc_fp32:.4f}, int8 {acc_int8:.4f}")
    finally:
        torch.set_num_threads(prev_threads)
    return card


def _host_latency(out_dir: Path, shape: list[int], cand: Candidate, num_classes: int,
                  progress: Progress | None) -> HostLatency:
    """The exported files themselves timed in onnxruntime on this host (1 thread, fastest of
    repeated runs), next to the host profile's prediction of the same networks."""
    host = load_device("host")
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    measured = []
    for i, name in enumerate(("model.onnx", "model.int8.onnx")):
        if progress:
            progress("timing the exported files on this host", i, 2)
        measured.append(time_session(ort_session(out_dir / name), {"input": x}, min_runs=20, min_seconds=0.4))
    if progress:
        progress("timing the exported files on this host", 2, 2)
    m32, m8 = measured
    f32, i8 = cand.replace_bits(32), cand.replace_bits(8)
    ch = shape[1]
    return HostLatency(label=host.label, measured_fp32=m32, predicted_fp32=host.latency_ms(f32, num_classes, ch),
                       measured_int8=m8, predicted_int8=host.latency_ms(i8, num_classes, ch),
                       note=f"model.onnx and model.int8.onnx timed on input {shape} in onnxruntime, 1 thread, "
                            f"fastest of repeated runs; predictions priced for the same input")
