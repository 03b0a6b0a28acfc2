"""The anatomy of an operator: the layers an OpSpec consists of, in order, with their shapes.

This is the one place that says what an inverted residual or a ShuffleNet unit is made of. The
MACs (``OpSpec.macs``), the latency estimator's features (``nas.latency.op_features``), the
activation memory (``nas.space.activation_bytes``) are folds over ``OpSpec.layers()``, and the
torch modules (``nas.models``) are built to the same list (tests/test_anatomy.py checks every
convolution and linear layer of a built network against it, in order).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nas.space._opspec import OpSpec

__all__ = ["Layer", "LAYER_KINDS", "op_layers"]

# conv: dense, grouped or pointwise convolution; depthwise: one filter per channel; linear:
# fully connected on a 1x1 map; maxpool / gap: pooling; scale: squeeze-excite's multiply;
# add: residual sum of two maps; shuffle: a ShuffleNet unit's concat and channel shuffle
LAYER_KINDS = ("conv", "depthwise", "linear", "maxpool", "gap", "scale", "add", "shuffle")


@dataclass(frozen=True, slots=True)
class Layer:
    """One primitive layer. ``h``/``w`` are its input side, ``oh``/``ow`` its output side.
    ``branch``: "" on the operator's only path, "main" / "proj" for the two branches of a
    ShuffleNet unit, "se" for squeeze-excite's parts. ``act``: the activation after it."""

    kind: str
    cin: int
    cout: int
    h: int
    w: int
    oh: int
    ow: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    act: str = "none"
    branch: str = ""

    @property
    def has_weights(self) -> bool:
        return self.kind in ("conv", "depthwise", "linear")

    @property
    def weight_elems(self) -> int:
        """Elements of the weight (biases and batch norm excluded)."""
        if not self.has_weights:
            return 0
        return self.cout * (self.cin // self.groups) * self.kernel * self.kernel

    @property
    def macs(self) -> int:
        """Multiply-accumulates (0 for pooling and element-wise layers)."""
        if not self.has_weights:
            return 0
        return self.oh * self.ow * self.weight_elems

    @property
    def in_elems(self) -> int:
        """Elements read from the input maps (both operands of an add)."""
        return (2 if self.kind == "add" else 1) * self.h * self.w * self.cin

    @property
    def out_elems(self) -> int:
        return self.oh * self.ow * self.cout


@lru_cache(maxsize=1 << 16)
def op_layers(op: OpSpec) -> tuple[Layer, ...]:
    """The layers of ``op`` (an OpSpec), in the order the model builder registers them. Cached
    by value: candidates share most of their operators, and the driver sums the MACs of every
    candidate it asks for (each ``cand.ops()`` makes new, equal OpSpecs)."""
    h, w = op.h, op.w
    oh, ow = op.out_hw
    k, s = op.kernel, op.stride
    if op.kind == "conv":
        return (Layer("conv", op.cin, op.cout, h, w, oh, ow, k, s, op.groups, op.act),)
    if op.kind == "linear":
        return (Layer("linear", op.cin, op.cout, 1, 1, 1, 1, act=op.act),)
    if op.kind == "maxpool":
        return (Layer("maxpool", op.cin, op.cout, h, w, oh, ow, k, s),)
    if op.kind == "gap":
        return (Layer("gap", op.cin, op.cout, h, w, 1, 1),)
    if op.kind == "mbconv":
        return _mbconv(op, h, w, oh, ow)
    if op.kind in ("shuffle", "shuffle_x"):
        return _shuffle(op, h, w, oh, ow)
    raise ValueError(f"no anatomy for op kind {op.kind!r}")


def _mbconv(op: OpSpec, h: int, w: int, oh: int, ow: int) -> tuple[Layer, ...]:
    """Inverted residual: [1x1 expand (groups)] -> depthwise -> [SE] -> 1x1 project -> [add]."""
    c, out = op.hidden, list[Layer]()
    if op.expand:
        out.append(Layer("conv", op.cin, c, h, w, h, w, 1, 1, op.groups, op.act))
    out.append(Layer("depthwise", c, c, h, w, oh, ow, op.kernel, op.stride, c, op.act))
    if op.se:
        out += [Layer("gap", c, c, oh, ow, 1, 1, branch="se"),
                Layer("conv", c, op.se, 1, 1, 1, 1, act="relu", branch="se"),
                Layer("conv", op.se, c, 1, 1, 1, 1, act="hsigmoid", branch="se"),
                Layer("scale", c, c, oh, ow, oh, ow, branch="se")]
    out.append(Layer("conv", c, op.cout, oh, ow, oh, ow, 1, 1, op.groups))
    if op.residual:
        out.append(Layer("add", op.cout, op.cout, oh, ow, oh, ow))
    return tuple(out)


def _shuffle(op: OpSpec, h: int, w: int, oh: int, ow: int) -> tuple[Layer, ...]:
    """ShuffleNetV2 unit ('shuffle') or its Xception-style variant ('shuffle_x'): the main
    branch (on half the channels at stride 1, on all at stride 2), the projection branch at
    stride 2 (depthwise + 1x1), then concat and channel shuffle."""
    bf, mid, k, s = op.cout // 2, op.hidden, op.kernel, op.stride
    cin = op.cin if s > 1 else op.cin // 2
    if op.kind == "shuffle":
        main = [Layer("conv", cin, mid, h, w, h, w, act=op.act, branch="main"),
                Layer("depthwise", mid, mid, h, w, oh, ow, k, s, mid, branch="main"),
                Layer("conv", mid, bf, oh, ow, oh, ow, act=op.act, branch="main")]
    else:  # dw(s) -> pw -> dw -> pw -> dw -> pw, all 3x3 depthwise
        main = [Layer("depthwise", cin, cin, h, w, oh, ow, 3, s, cin, branch="main"),
                Layer("conv", cin, mid, oh, ow, oh, ow, act=op.act, branch="main"),
                Layer("depthwise", mid, mid, oh, ow, oh, ow, 3, 1, mid, branch="main"),
                Layer("conv", mid, mid, oh, ow, oh, ow, act=op.act, branch="main"),
                Layer("depthwise", mid, mid, oh, ow, oh, ow, 3, 1, mid, branch="main"),
                Layer("conv", mid, bf, oh, ow, oh, ow, act=op.act, branch="main")]
    if s > 1:
        main += [Layer("depthwise", op.cin, op.cin, h, w, oh, ow, k, s, op.cin, branch="proj"),
                 Layer("conv", op.cin, bf, oh, ow, oh, ow, act=op.act, branch="proj")]
    main.append(Layer("shuffle", op.cout, op.cout, oh, ow, oh, ow))
    return tuple(main)
