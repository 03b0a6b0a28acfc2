"""Torch modules, one per OpSpec kind, built from the op's anatomy (``OpSpec.layers()``: the
same convolutions, shapes and order that MACs, latency features and memory are computed from;
tests/test_anatomy.py checks every built network against it). Every module keeps its OpSpec
(``.spec``) and its bit width (``.bits``), which fake quantization reads; there is no other
architecture state."""

from __future__ import annotations

import torch
from torch import nn

from nas.space import Layer, OpSpec

__all__ = ["build_op", "ChannelShuffle"]


def _act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    return nn.Identity()


def conv_bn(cin: int, cout: int, k: int, s: int = 1, groups: int = 1, act: str = "none") -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        _act(act),
    )


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excite: pool, 1x1 conv, ReLU, 1x1 conv, hard sigmoid, scale."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = torch.relu(self.fc1(s))
        return x * nn.functional.hardsigmoid(self.fc2(s))


class Op(nn.Module):
    def __init__(self, spec: OpSpec):
        super().__init__()
        self.spec = spec
        self.bits = spec.bits


def _conv_bn(layer: Layer) -> nn.Sequential:
    """A conv or depthwise layer of the anatomy as conv -> batch norm -> activation."""
    return conv_bn(layer.cin, layer.cout, layer.kernel, layer.stride, layer.groups, layer.act)


class ConvOp(Op):
    def __init__(self, spec: OpSpec):
        super().__init__(spec)
        (layer,) = spec.layers()
        self.body = _conv_bn(layer)

    def forward(self, x):
        return self.body(x)


class MBConvOp(Op):
    """Inverted residual, built from ``spec.layers()``: [1x1 expand (groups) + shuffle] ->
    depthwise -> [SE] -> 1x1 project, plus the skip connection (the anatomy's add)."""

    def __init__(self, spec: OpSpec):
        super().__init__(spec)
        mods: list[nn.Module] = []
        for layer in spec.layers():
            if layer.branch == "se":
                if layer.kind == "gap":  # the SE's pool opens it: one module for its four layers
                    mods.append(SqueezeExcite(spec.hidden, spec.se))
            elif layer.kind in ("conv", "depthwise"):
                mods.append(_conv_bn(layer))
                if len(mods) == 1 and layer.kind == "conv" and layer.groups > 1:
                    mods.append(ChannelShuffle(layer.groups))  # after a grouped 1x1 expansion
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        out = self.body(x)
        return x + out if self.spec.residual else out


class ShuffleOp(Op):
    """ShuffleNetV2 unit (kind 'shuffle') or its Xception-style variant ('shuffle_x'), built
    from ``spec.layers()``. Stride 1: half the channels pass through; stride 2: a depthwise+1x1
    projection branch."""

    def __init__(self, spec: OpSpec):
        super().__init__(spec)
        layers = spec.layers()
        self.main = nn.Sequential(*(_conv_bn(la) for la in layers if la.branch == "main"))
        proj = [_conv_bn(la) for la in layers if la.branch == "proj"]
        self.proj = nn.Sequential(*proj) if proj else None
        self.shuffle = ChannelShuffle(2)

    def forward(self, x):
        if self.proj is None:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.main(x2)), dim=1)
        else:
            out = torch.cat((self.proj(x), self.main(x)), dim=1)
        return self.shuffle(out)


class MaxPoolOp(Op):
    def __init__(self, spec: OpSpec):
        super().__init__(spec)
        (layer,) = spec.layers()
        self.pool = nn.MaxPool2d(layer.kernel, layer.stride, layer.kernel // 2)

    def forward(self, x):
        return self.pool(x)


class GapOp(Op):
    def forward(self, x):
        return torch.flatten(x.mean((2, 3), keepdim=True), 1)


class LinearOp(Op):
    def __init__(self, spec: OpSpec):
        super().__init__(spec)
        (layer,) = spec.layers()
        self.fc = nn.Linear(layer.cin, layer.cout)
        self.act = _act(layer.act)

    def forward(self, x):
        return self.act(self.fc(x))


_FACTORIES = {
    "conv": ConvOp,
    "mbconv": MBConvOp,
    "shuffle": ShuffleOp,
    "shuffle_x": ShuffleOp,
    "maxpool": MaxPoolOp,
    "gap": GapOp,
    "linear": LinearOp,
}


def build_op(spec: OpSpec) -> nn.Module:
    try:
        return _FACTORIES[spec.kind](spec)
    except KeyError:
        raise ValueError(f"no module for op kind {spec.kind!r}") from None
