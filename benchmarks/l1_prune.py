"""Benchmark helper (issue 6 tried it; the pipeline does not use it). L1-norm structured channel selection: initialise a pruned network from its trained,
unpruned parent (Li et al., "Pruning Filters for Efficient ConvNets", 2017).

A candidate's keep ratios (``p`` in its key) shrink the hidden channels of its blocks; the
parent is the same candidate with every keep ratio at 1, so every op matches the student's
except in its hidden width. ``l1_transfer(parent, student)`` copies every weight of ops whose
shapes agree, and for a pruned op keeps the hidden channels whose producing filters have the
largest L1 norm, slicing every tensor that touches them (the expansion conv and its
batch norm, the depthwise conv, squeeze-excite, the projection's input channels).
"""

from __future__ import annotations

import torch
from torch import nn

from nas.errors import TransferError

__all__ = ["TransferError", "l1_transfer"]


def _top_l1(weight: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (sorted) of the k output filters of ``weight`` with the largest L1 norm."""
    norms = weight.detach().abs().flatten(1).sum(1)
    return torch.sort(torch.topk(norms, k).indices).values


def _copy_conv_bn(dst: nn.Sequential, src: nn.Sequential, out_idx=None, in_idx=None) -> None:
    """Copy a conv_bn (conv, bn, act) slicing output channels (conv rows, BN) and/or input
    channels (conv columns; a depthwise conv is sliced by its output index only)."""
    w = src[0].weight.detach()
    if out_idx is not None:
        w = w[out_idx]
    if in_idx is not None and src[0].groups == 1:
        w = w[:, in_idx]
    dst[0].weight.data.copy_(w)
    for name in ("weight", "bias", "running_mean", "running_var"):
        t = getattr(src[1], name).detach()
        getattr(dst[1], name).data.copy_(t[out_idx] if out_idx is not None else t)
    dst[1].num_batches_tracked.data.copy_(src[1].num_batches_tracked)


def _transfer_mbconv(dst, src) -> None:
    ds, ss = dst.spec, src.spec
    if ds.groups != 1 or not ds.expand:
        raise TransferError(f"cannot slice a grouped or unexpanded mbconv ({ds})")
    dl, sl = list(dst.body), list(src.body)
    idx = _top_l1(sl[0][0].weight, ds.hidden)
    _copy_conv_bn(dl[0], sl[0], out_idx=idx)
    _copy_conv_bn(dl[1], sl[1], out_idx=idx)
    pos = 2
    if ds.se:
        d_se, s_se = dl[2], sl[2]
        fc1 = s_se.fc1.weight.detach()[:, idx]
        sq = _top_l1(fc1, ds.se) if ds.se != ss.se else torch.arange(ss.se)
        d_se.fc1.weight.data.copy_(fc1[sq])
        d_se.fc1.bias.data.copy_(s_se.fc1.bias.detach()[sq])
        d_se.fc2.weight.data.copy_(s_se.fc2.weight.detach()[idx][:, sq])
        d_se.fc2.bias.data.copy_(s_se.fc2.bias.detach()[idx])
        pos = 3
    _copy_conv_bn(dl[pos], sl[pos], in_idx=idx)


def _transfer_shuffle(dst, src) -> None:
    dm, sm = list(dst.main), list(src.main)
    if dst.spec.kind == "shuffle":  # 1x1 -> dw -> 1x1
        idx = _top_l1(sm[0][0].weight, dst.spec.hidden)
        _copy_conv_bn(dm[0], sm[0], out_idx=idx)
        _copy_conv_bn(dm[1], sm[1], out_idx=idx)
        _copy_conv_bn(dm[2], sm[2], in_idx=idx)
    else:  # dw -> 1x1 -> dw -> 1x1 -> dw -> 1x1, the middle width pruned throughout
        idx = _top_l1(sm[1][0].weight, dst.spec.hidden)
        _copy_conv_bn(dm[0], sm[0])
        _copy_conv_bn(dm[1], sm[1], out_idx=idx)
        _copy_conv_bn(dm[2], sm[2], out_idx=idx)
        _copy_conv_bn(dm[3], sm[3], out_idx=idx, in_idx=idx)
        _copy_conv_bn(dm[4], sm[4], out_idx=idx)
        _copy_conv_bn(dm[5], sm[5], in_idx=idx)
    if dst.proj is not None:
        dst.proj.load_state_dict(src.proj.state_dict())


@torch.no_grad()
def l1_transfer(parent: nn.Module, student: nn.Module) -> dict:
    """Initialise ``student`` (a built pruned candidate, no fake quantization attached yet)
    from ``parent`` (the same candidate unpruned, trained). Returns counts of ops copied
    whole and ops sliced. Raises TransferError when the networks do not correspond."""
    p_ops, s_ops = list(parent.layers), list(student.layers)
    if len(p_ops) != len(s_ops):
        raise TransferError(f"parent has {len(p_ops)} ops, student {len(s_ops)}")
    copied = sliced = 0
    for p, s in zip(p_ops, s_ops):
        ps, ss = p.spec, s.spec
        if (ps.kind, ps.cin, ps.cout, ps.kernel, ps.stride) != (ss.kind, ss.cin, ss.cout, ss.kernel, ss.stride):
            raise TransferError(f"ops differ: {ps} against {ss}")
        if ps.hidden == ss.hidden:
            s.load_state_dict(p.state_dict())
            copied += 1
        elif ss.hidden > ps.hidden:
            raise TransferError(f"student op is wider than the parent's: {ss.hidden} > {ps.hidden}")
        elif ss.kind == "mbconv":
            _transfer_mbconv(s, p)
            sliced += 1
        else:
            _transfer_shuffle(s, p)
            sliced += 1
    return {"copied": copied, "sliced": sliced}
