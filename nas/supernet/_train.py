"""Training a supernet once, and scoring candidates from its weights.

Training follows the sandwich rule with in-place distillation (BigNAS): every step trains the
largest member on the labels, and the smallest member and ``random_members`` random ones on
the largest's soft output (its logits, detached), accumulating their gradients into one SGD
step. The first ``1 - quant_fraction`` of the steps run every member in float; the rest train
the random and smallest members at random bit widths (fake-quantized: quantization-aware), the
largest stays float (the teacher). Hidden channels are re-sorted by importance at every epoch
boundary (``Supernet.sort_channels``). Members can be limited to the candidates a search can
pick (``allow``: e.g. within 1.5x the latency budget), which also bounds the largest, the
step's cost.

Each member sees the step's batch at its own input side (``proxy_resolution``: a 128 px
candidate of a 224 px space sees smaller images), resized on the fly (antialiased bilinear).

A checkpoint (weights, optimizer, step) is written to ``checkpoint`` every ``checkpoint_every``
steps and at the end; a run that finds one continues from its step (the data order and the
members of every step follow from the seed and the step number alone).

Data-parallel: given ``rank``/``world_size`` and an initialized ``torch.distributed`` process
group (Ray Train's TorchTrainer sets one up), each process takes its share of every global
batch and the gradients are averaged across processes before each step (an all-reduce over
one flat buffer; every process draws the same members), as are the float buffers (batch-norm
statistics and activation ranges, which each process updates on its share), so every process
holds the same supernet after every step. Only rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nas.data import Dataset
from nas.errors import CandidateError
from nas.space import FLOAT_BITS, Candidate, SearchSpace
from nas.supernet._supernet import Supernet, SupernetError
from nas.train import ProxyResult, evaluate_batches, proxy_resolution, recalibrate_bn

__all__ = ["SupernetBudget", "SupernetTraining", "train_supernet", "score_candidate", "sandwich_ends",
           "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 1


_ADDED_LATER = ("member_limit",)  # settings added after supernets were trained and recorded


@dataclass(frozen=True)
class SupernetBudget:
    epochs: float = 4.0  # passes over the training images used (fractions allowed)
    max_train_images: int | None = 4000  # per epoch; None = all
    batch_size: int = 64  # per process
    lr: float = 0.1
    warmup_fraction: float = 0.1
    weight_decay: float = 5e-5
    label_smoothing: float = 0.1
    random_members: int = 2
    quant_fraction: float = 0.5  # the last share of the steps trains members at random bits
    kd_temperature: float = 1.0
    checkpoint_every: int = 25  # steps
    # the members: the candidates within member_limit x the latency budget (the search's ``allow``);
    # it also bounds the largest member, whose step dominates the cost of a sandwich step
    member_limit: float = 1.5

    def digest(self) -> str:
        import hashlib
        import json

        d = asdict(self)
        d["member_limit"] = float(d["member_limit"])  # 1 in a hand-edited config.yaml is 1.0
        for f in fields(self):  # a later setting at its default: the digest supernets trained before it carry
            if f.name in _ADDED_LATER and d[f.name] == f.default:
                del d[f.name]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def matches(self, recorded: Any) -> bool:
        """Whether a training record's budget (``read_training(...)["budget"]``) is this one; a
        record written before a setting existed holds that setting's default."""
        try:
            return isinstance(recorded, dict) and SupernetBudget(**recorded).digest() == self.digest()
        except TypeError:  # a setting this version does not know
            return False


@dataclass(frozen=True)
class SupernetTraining:
    """What a training gave: steps run in all (``resumed_from`` of them before this call),
    seconds of this call, the mean loss of the last steps, the largest and smallest members."""

    steps: int
    resumed_from: int
    seconds: float
    loss: float
    largest: str
    smallest: list[str]


def sandwich_ends(space: SearchSpace, allow: Callable[[Candidate], bool] | None, seed: int,
                  tries: int = 400) -> tuple[Candidate, list[Candidate]]:
    """The largest member (float, unpruned; the teacher) and the smallest per skeleton, among
    the candidates ``allow`` admits: the space's own largest when admitted, else the one with
    the most MACs among each skeleton's largest at every width and resolution and ``tries``
    seeded samples (unpruned, float) that are admitted."""
    def macs(c: Candidate) -> int:
        return sum(op.macs for op in c.ops())

    largest = space.largest()
    if allow is not None and not allow(largest):
        pool = []
        rng = random.Random(seed)
        for _ in range(tries):
            pool.append(space.sample(rng).unpruned().replace_bits(FLOAT_BITS))
        for w in space.widths:  # the largest at every width and resolution of its skeleton
            for r in space.skeletons[largest.skeleton].resolutions:
                pool.append(largest.replace(width=float(w), resolution=r))
        admitted = [c for c in pool if _valid(space, c) and allow(c)]
        if not admitted:
            raise SupernetError("no candidate of the space is within the limit the supernet was given")
        largest = max(admitted, key=lambda c: (macs(c), c.key))
    smallest = [space.smallest(sk) for sk in space.skeletons]
    return largest, smallest


def _valid(space: SearchSpace, c: Candidate) -> bool:
    try:
        space.validate(c)
    except CandidateError:  # an invalid combination (e.g. groups that do not divide) is not a member
        return False
    return True


def _members(space: SearchSpace, largest: Candidate, smallest: list[Candidate], step: int, seed: int,
             budget: SupernetBudget, quant: bool, allow: Callable[[Candidate], bool] | None) -> list[Candidate]:
    """The step's members: largest, one smallest (skeletons in turn), random ones."""
    rng = random.Random(seed * 1_000_003 + step)
    small = smallest[step % len(smallest)]
    out = [small]
    for _ in range(budget.random_members):
        c = space.sample(rng)
        for _ in range(50):
            if allow is None or allow(c):
                break
            c = space.sample(rng)
        else:
            c = small
        out.append(c)
    if quant:
        out[0] = small.replace_bits(rng.choice(space.bits_choices))
    else:
        out = [c.replace_bits(FLOAT_BITS) for c in out]
    return [largest] + out


def _resize(x: torch.Tensor, side: int) -> torch.Tensor:
    if x.shape[-1] == side:
        return x
    return nn.functional.interpolate(x, size=(side, side), mode="bilinear", antialias=True,
                                     align_corners=False).contiguous(memory_format=torch.channels_last)


def train_supernet(net: Supernet, dataset: Dataset, budget: SupernetBudget, seed: int = 0, *,
                   allow: Callable[[Candidate], bool] | None = None, checkpoint: Path | None = None,
                   progress: Callable[[int, int, float], None] | None = None, threads: int | None = None,
                   rank: int = 0, world_size: int = 1) -> SupernetTraining:
    """Train ``net`` in place (see the module's docstring). ``progress(step, total, seconds)``
    after every step. Raises FloatingPointError on a non-finite loss, SupernetError on a
    checkpoint of another training."""
    space = net.space
    if budget.batch_size < 1 or budget.epochs <= 0 or not 0 <= budget.quant_fraction <= 1:
        raise SupernetError(f"bad supernet budget: {budget}")
    prev_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    dev = next(net.parameters()).device
    n = len(dataset.x_train) if budget.max_train_images is None else min(budget.max_train_images,
                                                                         len(dataset.x_train))
    global_batch = budget.batch_size * world_size
    steps_per_epoch = max(1, math.ceil(n / global_batch))
    total = max(1, int(round(budget.epochs * steps_per_epoch)))
    largest, smallest = sandwich_ends(space, allow, seed)
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": budget.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}], lr=budget.lr, momentum=0.9, nesterov=True)
    warm = max(1, int(total * budget.warmup_fraction))

    def lr_at(step: int) -> float:
        if step < warm:
            return budget.lr * (step + 1) / warm
        return budget.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    identity = {"version": CHECKPOINT_VERSION, "space": space.name, "budget": budget.digest(), "seed": seed,
                "world_size": world_size, "largest": largest.key}
    step = 0
    if checkpoint is not None and checkpoint.exists():
        ck = torch.load(checkpoint, map_location=dev, weights_only=True)
        if ck.get("identity") != identity:
            raise SupernetError(f"{checkpoint} is the checkpoint of another supernet training "
                                f"({ck.get('identity')}); delete it to start over")
        net.load_state_dict(ck["state"])
        opt.load_state_dict(ck["optimizer"])
        step = int(ck["step"])
    resumed = step
    crit = nn.CrossEntropyLoss(label_smoothing=budget.label_smoothing)
    T = budget.kd_temperature
    quant_from = int(round(total * (1 - budget.quant_fraction)))
    sides = {}
    losses: list[float] = []
    t0 = time.perf_counter()
    net.train()
    try:
        while step < total:
            epoch, offset = divmod(step, steps_per_epoch)
            rng = np.random.default_rng([seed, epoch])
            for i, (xb, yb) in enumerate(dataset.batches(global_batch, rng, limit=n)):
                if i < offset:
                    continue
                if step >= total:
                    break
                if step % steps_per_epoch == 0 and step > 0 and step != resumed:
                    net.sort_channels(opt)
                xb, yb = xb[rank::world_size], yb[rank::world_size]
                x = torch.from_numpy(xb).to(dev).contiguous(memory_format=torch.channels_last)
                y = torch.from_numpy(yb).to(dev)
                for group in opt.param_groups:
                    group["lr"] = lr_at(step)
                opt.zero_grad(set_to_none=True)
                members = _members(space, largest, smallest, step, seed, budget, step >= quant_from, allow)
                step_loss = 0.0
                teacher = None
                for j, cand in enumerate(members):
                    side = sides.get(cand.key) or sides.setdefault(cand.key, proxy_resolution(cand, dataset.resolution))
                    out = net(_resize(x, side), cand)
                    if j == 0:
                        loss = crit(out, y)
                        teacher = nn.functional.softmax(out.detach() / T, 1)
                    else:
                        loss = nn.functional.kl_div(nn.functional.log_softmax(out / T, 1), teacher,
                                                    reduction="batchmean") * T * T
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"non-finite supernet loss at step {step} ({cand.key})")
                    loss.backward()
                    step_loss += float(loss.detach())
                if world_size > 1:
                    _all_reduce_grads(net, world_size)
                    _average_buffers(net, world_size)
                nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                losses.append(step_loss / len(members))
                step += 1
                if checkpoint is not None and rank == 0 and (step % budget.checkpoint_every == 0 or step == total):
                    _save(checkpoint, net, opt, step, identity)
                if progress is not None and rank == 0:
                    progress(step, total, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev_threads)
    net.eval()
    return SupernetTraining(step, resumed, time.perf_counter() - t0,
                            float(np.mean(losses[-20:])) if losses else float("nan"),
                            largest.key, [c.key for c in smallest])


def _all_reduce_grads(net: nn.Module, world_size: int) -> None:
    import torch.distributed as dist

    params = list(net.parameters())
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= world_size
    i = 0
    for p in params:
        k = p.numel()
        p.grad = flat[i:i + k].view_as(p).clone()
        i += k


def _average_buffers(net: nn.Module, world_size: int) -> None:
    """Average the float buffers (batch-norm statistics, activation ranges) across processes,
    which each updated them on its own share of the batch: every process then holds the same
    supernet, the one rank 0 checkpoints and saves (so a resumed training continues every
    process exactly). Integer and bool buffers move alike in every process (same members)."""
    import torch.distributed as dist

    bufs = [b for b in net.buffers() if b.is_floating_point()]
    flat = torch.cat([b.reshape(-1) for b in bufs])
    dist.all_reduce(flat)
    flat /= world_size
    i = 0
    for b in bufs:
        k = b.numel()
        b.copy_(flat[i:i + k].view_as(b))
        i += k


def _save(path: Path, net: Supernet, opt: torch.optim.Optimizer, step: int, identity: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"identity": identity, "state": net.state_dict(), "optimizer": opt.state_dict(), "step": step}, tmp)
    os.replace(tmp, path)


def score_candidate(net: Supernet, candidate: Candidate, dataset: Dataset, seed: int = 0,
                    bn_batches: int = 8, max_val_images: int | None = 2000, batch_size: int = 128,
                    threads: int | None = None) -> ProxyResult:
    """A candidate's accuracy from the weights it inherits: its network extracted at its proxy
    side, batch-norm statistics (and activation ranges) re-estimated on ``bn_batches``
    training batches, then scored on the validation split. No training."""
    prev = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        side = proxy_resolution(candidate, dataset.resolution)
        ds = dataset.at_resolution(side)
        model = net.extract(candidate, side).to(memory_format=torch.channels_last)
        recalibrate_bn(model, ds, bn_batches, seed, batch_size=batch_size)
        acc, val_loss = evaluate_batches(model, ds.eval_batches("val", limit=max_val_images), with_loss=True)
        el = time.perf_counter() - t0
    except FloatingPointError as exc:
        el = time.perf_counter() - t0
        return ProxyResult(candidate.key, float("nan"), float("nan"), el, 0.0, el, 0.0, 0, failed=True,
                           reason=str(exc), resolution=side)
    finally:
        torch.set_num_threads(prev)
    return ProxyResult(candidate.key, acc, float("nan"), el, 0.0, el, 0.0, 0, resolution=side, val_loss=val_loss)
