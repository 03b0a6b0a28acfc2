"""OpSpec: one operator instance with everything its latency depends on, the unit of latency
tables (``OpSpec.key``) and of the model builder."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from nas.space._layers import Layer

__all__ = ["OpSpec", "FLOAT_BITS"]

FLOAT_BITS = 32


@dataclass(frozen=True)
class OpSpec:
    """One operator instance with everything its latency depends on. ``key`` is the latency
    table key. Kinds: conv, mbconv, shuffle, shuffle_x, maxpool, gap, linear."""

    kind: str
    h: int  # input height
    w: int  # input width
    cin: int
    cout: int
    hidden: int = 0  # expanded / branch-mid channels (0 when the op has none)
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    se: int = 0  # squeeze-excite bottleneck channels, 0 = no SE
    act: str = "none"
    bits: int = FLOAT_BITS
    expand: bool = False  # mbconv: has a 1x1 expansion conv

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.kind in ("gap", "linear"):
            return (1, 1)
        return (-(-self.h // self.stride), -(-self.w // self.stride))

    @property
    def residual(self) -> bool:
        return self.kind == "mbconv" and self.stride == 1 and self.cin == self.cout

    @cached_property
    def key(self) -> str:
        parts = [self.kind, f"{self.h}x{self.w}", f"{self.cin}-{self.cout}"]
        if self.hidden:
            parts.append(f"h{self.hidden}")
        if self.kind not in ("gap", "linear"):
            parts.append(f"k{self.kernel}s{self.stride}")
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        if self.expand:
            parts.append("x")
        if self.se:
            parts.append(f"se{self.se}")
        if self.act != "none":
            parts.append(self.act)
        parts.append(f"b{self.bits}")
        return ":".join(parts)

    @classmethod
    def from_key(cls, key: str) -> "OpSpec":
        """Inverse of ``key``. Raises ValueError on a malformed key."""
        parts = key.split(":")
        try:
            kind, hw, io = parts[0], parts[1], parts[2]
            h, w = (int(v) for v in hw.split("x"))
            cin, cout = (int(v) for v in io.split("-"))
            kw: dict[str, Any] = {}
            for p in parts[3:]:
                if p.startswith("h") and p[1:].isdigit():
                    kw["hidden"] = int(p[1:])
                elif re.fullmatch(r"k\d+s\d+", p):
                    k, s = p[1:].split("s")
                    kw["kernel"], kw["stride"] = int(k), int(s)
                elif re.fullmatch(r"g\d+", p):
                    kw["groups"] = int(p[1:])
                elif p == "x":
                    kw["expand"] = True
                elif re.fullmatch(r"se\d+", p):
                    kw["se"] = int(p[2:])
                elif re.fullmatch(r"b\d+", p):
                    kw["bits"] = int(p[1:])
                elif p in ("relu", "relu6", "hswish"):
                    kw["act"] = p
                else:
                    raise ValueError(f"unknown field {p!r}")
            op = cls(kind, h, w, cin, cout, **kw)
        except (IndexError, ValueError) as exc:
            raise ValueError(f"malformed op key {key!r}: {exc}") from None
        if op.key != key:
            raise ValueError(f"malformed op key {key!r} (canonical form: {op.key!r})")
        return op

    def layers(self) -> tuple[Layer, ...]:
        """The layers this operator consists of, in order, with their shapes (``nas.space._layers``):
        the one anatomy that MACs, latency features, memory and the torch modules follow."""
        return self._layers

    @cached_property
    def _layers(self) -> tuple[Layer, ...]:
        return op_layers(self)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the convolutions and linear layers (what fvcore counts with
        batch norm and pooling excluded), summed over ``layers()``."""
        return sum(layer.macs for layer in self._layers)


# ----------------------------------------------------------------------------- the one anatomy of an op

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
