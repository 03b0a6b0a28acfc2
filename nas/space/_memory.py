"""Peak memory of a candidate at batch 1, from its operator list: what a phone runtime that
frees each tensor after its last use (TFLite's arena planner) must hold at once.

Activations: walking the operators in order, the peak of the tensors live at each step: an
operator's input and output, and inside a block the maps its layers pass between them (an
inverted residual's expanded map, the depthwise output, and the block input kept for the skip
connection). Element size: 1 byte for a block at 8 bits or fewer (an int8 runtime's activations),
4 bytes at float. Weights: every convolution and linear weight at its block's bit width plus a
32-bit bias per output channel (``nas.models._counting.model_bytes``, the ``bytes`` of a trial).

``benchmarks/memory_check.py`` compares the activation figure with the peak that torch's
profiler measures for the float network.
"""

from __future__ import annotations

from typing import Any

from nas.space._candidate import Candidate
from nas.space._opspec import FLOAT_BITS, OpSpec

__all__ = ["activation_bytes", "peak_activation_bytes", "memory_bytes", "float_bytes"]


def _elem(op: OpSpec) -> int:
    return 1 if op.bits <= 8 else 4


def activation_bytes(op: OpSpec) -> int:
    """The most bytes of activations live at once while ``op`` runs (its input included)."""
    ho, wo = op.out_hw
    hw, ohw = op.h * op.w, ho * wo
    x, y = hw * op.cin, ohw * op.cout
    if op.kind == "mbconv":
        e = hw * op.hidden if op.expand else 0  # expanded map
        d = ohw * op.hidden  # depthwise output
        keep = x if op.residual else 0  # the skip connection holds the block input to the end
        steps = [x + e, (e or x) + d + (keep if op.expand else 0), d + y + keep]
        if op.residual:
            steps.append(x + y)  # the add
        return max(steps) * _elem(op)
    if op.kind in ("shuffle", "shuffle_x"):
        main_in = op.cin if op.stride > 1 else op.cin // 2
        mid = hw * op.hidden if op.kind == "shuffle" else ohw * op.hidden
        branch = [hw * main_in + mid, mid + ohw * op.hidden, ohw * op.hidden + ohw * (op.cout // 2)]
        # the whole input stays live (the other half, or the projection branch's input)
        return (x + max(branch) + (ohw * (op.cout // 2) if op.stride > 1 else 0)) * _elem(op)
    return (x + y) * _elem(op)


def peak_activation_bytes(ops: list[OpSpec]) -> int:
    """The largest activation footprint over the operators of a network."""
    return max((activation_bytes(op) for op in ops), default=0)


def memory_bytes(candidate: Candidate, weight_bytes: int, num_classes: int = 1000, in_channels: int = 3,
                 float_model: bool = False) -> int:
    """Peak activations at the candidate's own input side plus ``weight_bytes`` (a trial's
    ``bytes``). ``float_model``: price every activation at 4 bytes (an fp32 export)."""
    cand = candidate.replace_bits(FLOAT_BITS) if float_model else candidate
    ops = cand.ops(num_classes=num_classes, in_channels=in_channels)
    return peak_activation_bytes(ops) + int(weight_bytes)


def float_bytes(model: Any) -> int:
    """Weights of a float module as an fp32 file stores them: 4 bytes per weight, plus a 4-byte
    bias per output channel of every convolution and linear layer."""
    from torch import nn

    return sum(m.weight.numel() * 4 + m.weight.shape[0] * 4 for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))
