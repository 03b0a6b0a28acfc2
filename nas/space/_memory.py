"""Peak memory of a candidate at batch 1, from its operator list: what a phone runtime that
frees each tensor after its last use (TFLite's arena planner) must hold at once.

Activations: walking the operators in order, and inside each the layers of its anatomy
(``OpSpec.layers()``), the peak of the tensors live at each step: an operator's input and
output, and inside a block the maps its layers pass between them (an
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

__all__ = ["activation_bytes", "peak_activation_bytes", "memory_bytes", "footprint", "float_bytes"]


def _elem(op: OpSpec) -> int:
    return 1 if op.bits <= 8 else 4


def activation_bytes(op: OpSpec) -> int:
    """The most bytes of activations live at once while ``op`` runs (its input included), walking
    ``op.layers()``: each layer holds its input and output, plus what the operator keeps beside
    them (an inverted residual's block input for the skip; a ShuffleNet unit's whole input and,
    at stride 2, its projection branch's output). Squeeze-excite works on the depthwise output
    in place (its vectors are negligible); the residual add writes into one of its inputs."""
    layers = op.layers()
    if op.kind == "mbconv":
        keep = layers[0].in_elems if op.residual else 0  # the skip connection holds the block input
        steps = [layers[0].in_elems + layers[0].out_elems]
        for layer in layers[1:]:
            if layer.branch == "se":
                continue
            steps.append(layer.in_elems if layer.kind == "add" else layer.in_elems + layer.out_elems + keep)
        return max(steps) * _elem(op)
    if op.kind in ("shuffle", "shuffle_x"):
        main = [la for la in layers if la.branch == "main"]
        proj = [la for la in layers if la.branch == "proj"]
        if op.kind == "shuffle":
            branch = [la.in_elems + la.out_elems for la in main]
        else:  # each depthwise conv runs into the 1x1 after it: their maps count as one step
            branch = [dw.in_elems + pw.out_elems for dw, pw in zip(main[::2], main[1::2])]
        # the whole input stays live (the other half, or the projection branch's input)
        x = op.h * op.w * op.cin
        return (x + max(branch) + (proj[-1].out_elems if proj else 0)) * _elem(op)
    return (layers[0].in_elems + layers[-1].out_elems) * _elem(op)


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


def footprint(cand: Candidate, num_classes: int, in_channels: int = 3) -> tuple[int, int]:
    """(size, peak memory) in bytes of ``cand`` at its own input side, from its operators'
    layers: the ``bytes`` and ``memory`` the driver records for a trial (``model_bytes`` of the
    built module, each weight at its block's bit width plus a 32-bit bias per output channel;
    and ``memory_bytes``), without building the module (equal: tests/test_memory.py)."""
    ops = cand.ops(num_classes=num_classes, in_channels=in_channels)
    size = int(round(sum(layer.weight_elems * op.bits / 8 + layer.cout * 4
                         for op in ops for layer in op.layers() if layer.has_weights)))
    return size, peak_activation_bytes(ops) + size


def float_bytes(model: Any) -> int:
    """Weights of a float module as an fp32 file stores them: 4 bytes per weight, plus a 4-byte
    bias per output channel of every convolution and linear layer."""
    from torch import nn

    return sum(m.weight.numel() * 4 + m.weight.shape[0] * 4 for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))
