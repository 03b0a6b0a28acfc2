"""OpSpec: one operator instance with everything its latency depends on, the unit of latency
tables (``OpSpec.key``) and of the model builder."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from nas.space._layers import Layer, op_layers

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
