"""Short-proxy accuracy: brief training of a candidate on a proxy dataset.

The candidate is built at the dataset's resolution (the proxy variant of ``build_model``) with
its pruned widths, fake-quantized at its bit widths, trained for a small budget with SGD
(Nesterov momentum, one-cycle schedule, label smoothing) in channels-last memory format, and
scored on the validation split after re-estimating batch-norm statistics. Deterministic for
a given seed and thread count.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Iterable

import numpy as np
import torch
from torch import nn

from nas.data import Dataset, device_batches
from nas.models import apply_fake_quant, build_model
from nas.space import Candidate, parse_candidate
from nas.train._accel import deterministic_cuda
from nas.train._checkpoint import load_state, save_state

__all__ = ["ProxyBudget", "ProxyResult", "evaluate_proxy", "proxy_resolution", "train_model", "evaluate_model",
           "evaluate_batches", "estimate_training_bytes", "recalibrate_bn", "make_optimizer"]


@dataclass(frozen=True)
class ProxyBudget:
    epochs: float = 1.0  # passes over the training images used (fractions allowed)
    max_train_images: int | None = 4000  # per epoch; None = all
    # 32, not 64: twice the steps on the same images ranked candidates better on both proxy
    # benchmarks (Kendall tau 0.345 -> 0.504 on CIFAR, 0.260 -> 0.420 built-in) for 1.14x the
    # cost (7.8 -> 8.9 s median per candidate, one core; BENCHMARKS.md, issue 4).
    batch_size: int = 32
    lr: float = 0.1
    warmup_fraction: float = 0.25  # linear warm-up over this share of the steps, then cosine to 0
    weight_decay: float = 5e-5
    label_smoothing: float = 0.1
    max_val_images: int | None = 2000
    threads: int = 1
    bn_recalibration_batches: int = 8  # re-estimate batch-norm statistics after training
    memory_limit_bytes: int | None = None  # per evaluation; None = the memory available now
    device: str = "cpu"  # "cuda" (or "cuda:N"): model and batches on the GPU (nas.train._accel)
    trials_per_device: int = 1  # trials sharing the GPU: a resident split may take 1/K of its share


@dataclass(frozen=True)
class ProxyResult:
    """What one short proxy training of a candidate gave (a worker wraps it in
    ``nas.search.WorkerResult``)."""

    key: str
    accuracy: float  # validation accuracy in [0, 1]; nan when failed
    loss: float  # final training loss (mean of the last 20 steps)
    seconds: float
    train_seconds: float
    eval_seconds: float
    images_per_second: float
    steps: int
    failed: bool = False
    reason: str = ""
    resolution: int = 0  # input side the candidate was trained and scored at
    val_loss: float = float("nan")  # mean cross-entropy on the validation images scored
    state: bytes | None = None  # with keep_state: weights and optimizer state (save_state)

    def to_dict(self) -> dict:
        return asdict(self)


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo, else total physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


TRAINING_OVERHEAD_BYTES = 24 << 20  # allocator and thread workspaces of a step, beside the maps (benchmarks/training_bytes.py)


def estimate_training_bytes(candidate: Candidate, dataset: Dataset, batch_size: int) -> int:
    """Peak memory of one fake-quantized training step in float32, folded over the operators'
    layers (``OpSpec.layers()``, the one anatomy): every map the backward pass keeps (a weighted
    layer's quantized input, its output and the batch norm's, and the activation's output; a
    pooling or element-wise layer's output), and the weights with their gradients and momentum.
    Against the measured peak of a training step: 0.90-1.28x over MobileNet, FBNet and
    ShuffleNet networks at 32-96 px (the per-op bound it replaced: 0.75-2.15x; BENCHMARKS.md,
    benchmarks/training_bytes.py)."""
    ops = candidate.ops(resolution=dataset.resolution, num_classes=dataset.num_classes,
                        in_channels=dataset.in_channels)
    maps = weights = 0
    for op in ops:
        for layer in op.layers():
            kept = 2 if layer.has_weights else 1  # a weighted layer's output and its batch norm's
            maps += layer.out_elems * kept + (layer.out_elems if layer.act != "none" else 0) + \
                (layer.in_elems if layer.has_weights else 0)
            weights += layer.weight_elems
    return int(batch_size * maps * 4 + weights * 4 * 3 + TRAINING_OVERHEAD_BYTES)


def proxy_resolution(candidate: Candidate, dataset_resolution: int) -> int:
    """The input side a candidate trains at in the proxy: the dataset's side scaled by the
    candidate's resolution over the largest resolution of its skeleton (at least 8 px), in
    the space the candidate is bound to.

    Without this the resolution gene would cost latency but never accuracy, and a search would
    always pick the smallest.
    """
    sk = candidate.search_space.skeletons.get(candidate.skeleton)
    top = max(sk.resolutions) if sk is not None and sk.resolutions else candidate.resolution
    return _scaled_side(candidate.resolution, top, dataset_resolution)


def proxy_sides(space, dataset_resolution: int) -> list[int]:
    """Every side ``proxy_resolution`` can give a candidate of ``space`` on data of this side."""
    return sorted({_scaled_side(r, max(sk.resolutions), dataset_resolution)
                   for sk in space.skeletons.values() if sk.resolutions for r in sk.resolutions})


def _scaled_side(resolution: int, top: int, dataset_resolution: int) -> int:
    if resolution >= top:
        return dataset_resolution
    return max(8, int(round(dataset_resolution * resolution / top)))


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _to(x: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(x)
    if device.type != "cpu":  # pinned host memory: the copy overlaps with the GPU's work
        t = t.pin_memory().to(device, non_blocking=True)
    return t


def recalibrate_bn(model: nn.Module, dataset: Dataset, batches: int, seed: int,
                   batch_size: int = 128) -> None:
    """Re-estimate batch-norm running statistics with the final weights (a cumulative average
    over ``batches`` un-augmented training batches). After a short, high-learning-rate
    schedule the running averages lag behind the weights: eval-mode accuracy of a 45-step run
    was 12% before this and 38% after (train-mode accuracy 40%)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns or batches <= 0:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    rng = np.random.default_rng(seed + 1)
    dev = _device_of(model)
    with torch.no_grad():
        for i, (xb, _) in enumerate(dataset.batches(batch_size, rng, augment=False)):
            if i >= batches:
                break
            model(_channels_last(_to(xb, dev)))
    for bn in bns:
        bn.momentum = 0.1


def evaluate_batches(model: nn.Module, batches: Iterable[tuple[np.ndarray, np.ndarray]], with_loss: bool = False):
    """Accuracy of ``model`` over (float32 NCHW, int64 labels) batches, such as
    ``Dataset.eval_batches``; with ``with_loss``, (accuracy, mean cross-entropy)."""
    model.eval()
    dev = _device_of(model)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    n = 0
    with torch.no_grad():
        for xb, yb in batches:
            out = model(_channels_last(_to(np.asarray(xb), dev)))
            yt = _to(np.asarray(yb, dtype=np.int64), dev)
            correct += (out.argmax(1) == yt).sum()  # summed on the device: one read at the end
            if with_loss:
                loss_sum += nn.functional.cross_entropy(out.float(), yt, reduction="sum").double()
            n += len(yb)
    acc = int(correct) / max(1, n)
    return (acc, float(loss_sum) / max(1, n)) if with_loss else acc


def evaluate_model(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 256,
                   with_loss: bool = False):
    """Accuracy of ``model`` on (x, y) arrays, ``batch_size`` at a time; with ``with_loss``,
    (accuracy, mean cross-entropy). A dataset's split: ``evaluate_batches``."""
    return evaluate_batches(model, ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)),
                            with_loss)


def make_optimizer(model: nn.Module, budget: ProxyBudget) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum; no weight decay on biases and batch-norm parameters."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return torch.optim.SGD([{"params": decay, "weight_decay": budget.weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}],
                           lr=budget.lr, momentum=0.9, nesterov=True)


def train_model(model: nn.Module, dataset: Dataset, budget: ProxyBudget, seed: int,
                teacher: nn.Module | None = None, kd_temperature: float = 4.0, kd_alpha: float = 0.7,
                progress=None, optimizer: torch.optim.Optimizer | None = None):
    """Train in place. Returns (steps, last losses, images seen, seconds). Raises
    FloatingPointError on a non-finite loss. With a ``teacher`` the loss is
    ``(1 - kd_alpha) * cross-entropy + kd_alpha * T^2 * KL(teacher_T || student_T)``.
    ``progress(step, total_steps)`` is called every 10 steps and at the end. An ``optimizer``
    (e.g. restored from a checkpoint, with its momentum) is continued with a fresh warm-up
    and cosine schedule over ``budget.epochs`` (a warm restart); else a new one is made."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n_per_epoch = len(dataset.x_train) if budget.max_train_images is None else min(
        budget.max_train_images, len(dataset.x_train))
    steps_per_epoch = math.ceil(n_per_epoch / budget.batch_size)
    total_steps = max(1, int(round(budget.epochs * steps_per_epoch)))
    opt = optimizer if optimizer is not None else make_optimizer(model, budget)
    for group in opt.param_groups:  # a continued optimizer restarts its schedule at the peak
        group["lr"] = group["initial_lr"] = budget.lr
    warm = max(1, int(total_steps * budget.warmup_fraction))

    def lr_factor(step: int) -> float:  # linear warm-up, then cosine to 0; any step count
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total_steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    crit = nn.CrossEntropyLoss(label_smoothing=budget.label_smoothing)
    model.train()
    if teacher is not None:
        teacher.eval()
    losses: list[torch.Tensor] = []  # kept on the device; read every CHECK_EVERY steps
    dev = _device_of(model)
    step, seen = 0, 0
    t0 = time.perf_counter()
    while step < total_steps:
        if dev.type == "cpu":  # numpy batches, as always
            epoch = ((_channels_last(torch.from_numpy(xb)), torch.from_numpy(yb))
                     for xb, yb in dataset.batches(budget.batch_size, rng, limit=n_per_epoch))
        else:  # resident or streamed, augmented on the device (nas.data._feed)
            epoch = device_batches(dataset, budget.batch_size, rng, dev, limit=n_per_epoch,
                                   sharing=budget.trials_per_device)
        try:
            for x, y in epoch:
                out = model(x)
                loss = crit(out, y)
                if teacher is not None:
                    with torch.no_grad():
                        t_out = teacher(x)
                    kd = nn.functional.kl_div(nn.functional.log_softmax(out / kd_temperature, 1),
                                              nn.functional.softmax(t_out / kd_temperature, 1),
                                              reduction="batchmean") * kd_temperature ** 2
                    loss = (1 - kd_alpha) * loss + kd_alpha * kd
                if dev.type == "cpu" and not torch.isfinite(loss):  # free on the CPU; batched on a GPU
                    raise FloatingPointError(f"non-finite training loss at step {step}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                sched.step()
                losses.append(loss.detach())
                seen += len(y)
                step += 1
                if dev.type != "cpu" and (step % CHECK_EVERY == 0 or step >= total_steps):
                    _check_finite(losses[-CHECK_EVERY:], step)
                if progress is not None and (step % 10 == 0 or step == total_steps):
                    progress(step, total_steps)
                if step >= total_steps:
                    break
        finally:
            epoch.close()  # a streamed feed's reader thread stops now, even on an error
    last = torch.stack(losses[-20:]).float().cpu().tolist() if losses else []
    return step, last, seen, time.perf_counter() - t0


CHECK_EVERY = 25  # GPU: steps between reads of the losses (one host synchronisation each)


def _check_finite(recent: list[torch.Tensor], step: int) -> None:
    vals = torch.stack(recent)
    bad = ~torch.isfinite(vals)
    if bool(bad.any()):
        first = step - len(recent) + int(bad.float().argmax())
        raise FloatingPointError(f"non-finite training loss at step {first}")


def evaluate_proxy(candidate: Candidate | str, dataset: Dataset, seed: int = 0,
                   budget: ProxyBudget | None = None, resolution: int | None = None,
                   start: bytes | None = None, keep_state: bool = False,
                   **overrides) -> ProxyResult:
    """Train ``candidate`` briefly on ``dataset`` and return its validation accuracy.

    ``budget`` fields can be overridden by keyword (``epochs=1``, ``threads=2`` ...). The input
    side is ``resolution`` if given, else ``proxy_resolution`` (the dataset is resized). A
    non-finite loss gives a failed result with the reason rather than an exception.
    ``start``: a checkpoint (``save_state``) to continue from, weights and optimizer momentum,
    for ``budget.epochs`` more (a rung of successive halving); ``keep_state`` returns the
    final checkpoint in ``ProxyResult.state``.
    """
    if isinstance(candidate, str):
        candidate = parse_candidate(candidate)
    budget = budget or ProxyBudget()
    if overrides:
        budget = replace(budget, **overrides)
    if budget.batch_size < 1 or budget.epochs <= 0 or budget.threads < 1 or not 0 <= budget.warmup_fraction < 1:
        raise ValueError(f"bad proxy budget: {budget}")
    t_start = time.perf_counter()
    res = resolution or proxy_resolution(candidate, dataset.resolution)
    dataset = dataset.at_resolution(res)
    batch = min(budget.batch_size, len(dataset.x_train))
    need = estimate_training_bytes(candidate, dataset, batch)
    limit = budget.memory_limit_bytes or available_memory_bytes()
    if need > limit and budget.device == "cpu":  # a GPU's memory is checked by trying (below)
        return ProxyResult(candidate.key, float("nan"), float("nan"), 0.0, 0.0, 0.0, 0.0, 0, failed=True, resolution=res,
                           reason=f"a batch of {batch} needs about {need / 1e9:.1f} GB, more than the "
                                  f"{limit / 1e9:.1f} GB available: lower batch_size")
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(budget.threads)
    if budget.device != "cpu":
        deterministic_cuda()
    try:
        torch.manual_seed(seed)
        model = build_model(candidate, dataset.num_classes, dataset.in_channels,
                            resolution=dataset.resolution)
        apply_fake_quant(model)
        model = model.to(device=torch.device(budget.device), memory_format=torch.channels_last)
        opt = make_optimizer(model, budget)
        if start is not None:
            ckpt = load_state(start)
            model.load_state_dict(ckpt["model"])
            if ckpt.get("optimizer"):
                opt.load_state_dict(ckpt["optimizer"])
        try:
            steps, losses, seen, train_s = train_model(model, dataset, budget, seed, optimizer=opt)
        except (FloatingPointError, MemoryError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and "alloc" not in str(exc).lower() \
                    and not isinstance(exc, torch.cuda.OutOfMemoryError):
                raise
            el = time.perf_counter() - t_start
            if isinstance(exc, FloatingPointError):
                reason = str(exc)
            elif isinstance(exc, torch.cuda.OutOfMemoryError) or budget.device != "cpu":
                del model, opt
                torch.cuda.empty_cache()  # give the memory back to the trials sharing the GPU
                reason = (f"CUDA out of memory at batch size {batch}: lower batch size or raise "
                          f"--trials-per-gpu ({str(exc).splitlines()[0][:100]})")
            else:
                reason = f"out of memory at batch size {batch}: lower batch_size ({str(exc).splitlines()[0][:120]})"
            return ProxyResult(candidate.key, float("nan"), float("nan"), el, el, 0.0, 0.0, 0,
                               failed=True, reason=reason, resolution=res)
        t1 = time.perf_counter()
        recalibrate_bn(model, dataset, budget.bn_recalibration_batches, seed)
        val = dataset.eval_batches("val", limit=budget.max_val_images)  # a batch at a time
        acc, val_loss = evaluate_batches(model, val, with_loss=True)
        eval_s = time.perf_counter() - t1
        state = save_state(model, opt, resolution=res) if keep_state else None
    finally:
        torch.set_num_threads(prev_threads)
    return ProxyResult(candidate.key, acc, float(np.mean(losses)), time.perf_counter() - t_start,
                       train_s, eval_s, seen / max(train_s, 1e-9), steps, resolution=res, val_loss=val_loss,
                       state=state)
