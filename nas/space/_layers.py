"""The primitive layers operators consist of (``Layer``). Which layers an OpSpec consists of, in
order, with their shapes, is ``OpSpec.layers()`` (``op_layers`` in ``nas.space._opspec``): the one
place that says what an inverted residual or a ShuffleNet unit is made of. The
MACs (``OpSpec.macs``), the latency estimator's features (``nas.latency.op_features``), the
activation memory (``nas.space.activation_bytes``) are folds over ``OpSpec.layers()``, and the
torch modules (``nas.models``) are built to the same list (tests/test_anatomy.py checks every
convolution and linear layer of a built network against it, in order).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Layer", "LAYER_KINDS"]

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
