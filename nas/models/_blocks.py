"""Torch modules, one per OpSpec kind. Every module keeps its OpSpec (``.spec``) and its bit
width (``.bits``), which fake quantization reads; there is no other architecture state."""

from __future__ import annotations

import torch
from torch import nn

from nas.space import OpSpec

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


class ConvOp(Op):
    def __init__(self, spec: OpSpec):
        super().__init__(spec)
        self.body = conv_bn(spec.cin, spec.cout, spec.kernel, spec.stride, spec.groups, spec.act)

    def forward(self, x):
        return self.body(x)


class MBConvOp(Op):
    """Inverted residual: [1x1 expand (groups) + shuffle] -> depthwise -> [SE] -> 1x1 project."""

    def __init__(self, spec: OpSpec):
        super().__init__(spec)
        layers: list[nn.Module] = []
        if spec.expand:
            layers.append(conv_bn(spec.cin, spec.hidden, 1, 1, spec.groups, spec.act))
            if spec.groups > 1:
                layers.append(ChannelShuffle(spec.groups))
        layers.append(conv_bn(spec.hidden, spec.hidden, spec.kernel, spec.stride, spec.hidden, spec.act))
        if spec.se:
            layers.append(SqueezeExcite(spec.hidden, spec.se))
        layers.append(conv_bn(spec.hidden, spec.cout, 1, 1, spec.groups))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        out = self.body(x)
        return x + out if self.spec.residual else out


class ShuffleOp(Op):
    """ShuffleNetV2 unit (kind 'shuffle') or its Xception-style variant ('shuffle_x').
    Stride 1: half the channels pass through; stride 2: a depthwise+1x1 projection branch."""

    def __init__(self, spec: OpSpec):
        super().__init__(spec)
        bf, mid, k = spec.cout // 2, spec.hidden, spec.kernel
        cin = spec.cin if spec.stride > 1 else spec.cin // 2
        if spec.kind == "shuffle":
            self.main = nn.Sequential(
                conv_bn(cin, mid, 1, act=spec.act),
                conv_bn(mid, mid, k, spec.stride, groups=mid),
                conv_bn(mid, bf, 1, act=spec.act),
            )
        else:
            self.main = nn.Sequential(
                conv_bn(cin, cin, 3, spec.stride, groups=cin),
                conv_bn(cin, mid, 1, act=spec.act),
                conv_bn(mid, mid, 3, groups=mid),
                conv_bn(mid, mid, 1, act=spec.act),
                conv_bn(mid, mid, 3, groups=mid),
                conv_bn(mid, bf, 1, act=spec.act),
            )
        self.proj = None
        if spec.stride > 1:
            self.proj = nn.Sequential(
                conv_bn(spec.cin, spec.cin, k, spec.stride, groups=spec.cin),
                conv_bn(spec.cin, bf, 1, act=spec.act),
            )
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
        self.pool = nn.MaxPool2d(spec.kernel, spec.stride, spec.kernel // 2)

    def forward(self, x):
        return self.pool(x)


class GapOp(Op):
    def forward(self, x):
        return torch.flatten(x.mean((2, 3), keepdim=True), 1)


class LinearOp(Op):
    def __init__(self, spec: OpSpec):
        super().__init__(spec)
        self.fc = nn.Linear(spec.cin, spec.cout)
        self.act = _act(spec.act)

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
