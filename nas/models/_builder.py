"""Candidate -> torch module. The network is exactly ``candidate.ops(...)``, in order."""

from __future__ import annotations

import torch
from torch import nn

from nas.models._blocks import build_op
from nas.space import Candidate, parse_candidate

__all__ = ["Network", "build_model"]


class Network(nn.Module):
    """A built candidate. ``key``, ``resolution`` and ``in_channels`` say what it is."""

    def __init__(self, candidate: Candidate, num_classes: int, in_channels: int, resolution: int):
        super().__init__()
        self.key = candidate.key
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.resolution = resolution
        specs = candidate.ops(resolution=resolution, num_classes=num_classes, in_channels=in_channels)
        self.layers = nn.Sequential(*(build_op(s) for s in specs))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build_model(candidate: Candidate | str, num_classes: int, in_channels: int = 3,
                resolution: int | None = None) -> Network:
    """Build ``candidate`` (a Candidate or its key) as a torch module.

    ``resolution`` defaults to the candidate's own; a smaller one (e.g. 32 for proxy training)
    builds the same weights with the earliest downsamplings at stride 1 (``SearchSpace.ops``).
    Pruned channels are physically absent; each op module carries its ``bits``.
    """
    if isinstance(candidate, str):
        candidate = parse_candidate(candidate)
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be at least 1, got {in_channels}")
    res = resolution or candidate.resolution
    return Network(candidate, num_classes, in_channels, res)
