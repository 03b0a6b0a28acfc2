"""L1-norm channel transfer from an unpruned parent (benchmarks/l1_prune.py)."""

import random

import pytest
import torch
from l1_prune import (  # benchmarks/ (conftest puts it on the path)
    TransferError,
    l1_transfer,
)

import nas
from nas.models import build_model
from nas.space import Candidate


def _pruned_sample(space_name: str, seed: int) -> Candidate:
    space = nas.load_space(space_name)
    rng = random.Random(seed)
    for _ in range(200):
        c = space.sample(rng)
        if any(b.keep < 1 for s in c.stages for b in s) and c != c.unpruned():
            return c
    raise AssertionError("no pruned sample")


@torch.no_grad()
def _silence_dropped(parent, student, gen) -> None:
    """Make the parent's channels that the student lacks carry nothing: for each pruned op,
    choose which hidden channels survive, shrink the others' producing filters (so L1 ranks
    them last) and zero every weight that reads them. The parent's output is then exactly
    what the student computes after the transfer."""
    for p, s in zip(parent.layers, student.layers):
        h_p, h_s = p.spec.hidden, s.spec.hidden
        if h_p == h_s:
            continue
        drop = torch.randperm(h_p, generator=gen)[: h_p - h_s]
        if p.spec.kind == "mbconv":
            body = list(p.body)
            body[0][0].weight[drop] *= 1e-3
            if p.spec.se:
                se = body[2]
                se.fc1.weight[:, drop] = 0
                if s.spec.se != p.spec.se:  # the squeeze width shrinks too
                    sq_drop = torch.randperm(p.spec.se, generator=gen)[: p.spec.se - s.spec.se]
                    se.fc1.weight[sq_drop] *= 1e-3
                    se.fc2.weight[:, sq_drop] = 0
            body[-1][0].weight[:, drop] = 0
        elif p.spec.kind == "shuffle":
            p.main[0][0].weight[drop] *= 1e-3
            p.main[2][0].weight[:, drop] = 0
        else:  # shuffle_x
            p.main[1][0].weight[drop] *= 1e-3
            p.main[3][0].weight[:, drop] = 0
            p.main[3][0].weight[drop] *= 1e-3
            p.main[5][0].weight[:, drop] = 0


@pytest.mark.parametrize("space_name,seed", [("mobilenetv3", 0), ("mobilenetv3", 1), ("mobilenetv2", 2),
                                             ("shufflenetv2", 3), ("shufflenetv2", 4)])
def test_transfer_is_exact_when_dropped_channels_are_silent(space_name, seed):
    cand = _pruned_sample(space_name, seed)
    torch.manual_seed(seed)
    parent = build_model(cand.unpruned(), 10, 3, resolution=32)
    student = build_model(cand, 10, 3, resolution=32)
    # random BN statistics so that a wrongly sliced BN would show
    for m in parent.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    _silence_dropped(parent, student, torch.Generator().manual_seed(seed))
    counts = l1_transfer(parent, student)
    assert counts["sliced"] >= 1
    parent.eval(), student.eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(student(x), parent(x), rtol=1e-4, atol=1e-5)


def test_transfer_changes_output_when_dropped_channels_matter():
    cand = _pruned_sample("mobilenetv3", 0)
    torch.manual_seed(0)
    parent = build_model(cand.unpruned(), 10, 3, resolution=32).eval()
    student = build_model(cand, 10, 3, resolution=32).eval()
    l1_transfer(parent, student)
    x = torch.randn(2, 3, 32, 32)
    a, b = student(x), parent(x)  # logits are tiny at init (classifier std 0.01): compare relatively
    assert (a - b).abs().max() > 1e-2 * b.abs().max()


def test_transfer_refuses_unrelated_networks():
    a = build_model(_pruned_sample("mobilenetv3", 0), 10, 3, resolution=32)
    b = build_model(_pruned_sample("shufflenetv2", 3), 10, 3, resolution=32)
    with pytest.raises(TransferError):
        l1_transfer(a, b)
    c = _pruned_sample("mobilenetv2", 2)
    with pytest.raises(TransferError):  # the pruned one as parent of the unpruned one
        l1_transfer(build_model(c, 10, 3, resolution=32), build_model(c.unpruned(), 10, 3, resolution=32))
