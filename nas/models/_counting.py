"""MACs (fvcore), parameters and deployable bytes of a candidate."""

from __future__ import annotations

import logging

import torch
from torch import nn

from nas.models import build_model
from nas.space import Candidate

__all__ = ["count", "model_bytes"]

_MAC_OPS = {"conv", "linear", "matmul", "addmm", "bmm", "einsum"}


def count(candidate: Candidate | str, num_classes: int = 1000, in_channels: int = 3,
          resolution: int | None = None) -> dict[str, int]:
    """``{"macs", "params", "bytes"}`` of the network at its resolution (or ``resolution``).

    macs: fvcore's count of convolution and linear multiply-accumulates (batch norm and
    pooling excluded, as in the MobileNet and ShuffleNet papers).
    params: every trainable parameter, batch norm included.
    bytes: deployable size: each conv/linear weight at its block's bit width, plus a 32-bit
    bias per output channel (batch norm folded into it).
    """
    from fvcore.nn import FlopCountAnalysis

    model = build_model(candidate, num_classes, in_channels, resolution).eval()
    x = torch.zeros(1, in_channels, model.resolution, model.resolution)
    # fvcore logs a warning for every op it skips (adds, activations): not useful here
    logging.getLogger("fvcore.nn.jit_analysis").setLevel(logging.ERROR)
    with torch.no_grad():
        fca = FlopCountAnalysis(model, x)
        fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        # fvcore also counts batch norm and pooling; keep the multiply-accumulate kinds only
        macs = int(sum(v for k, v in fca.by_operator().items() if k in _MAC_OPS))
    params = sum(p.numel() for p in model.parameters())
    return {"macs": macs, "params": params, "bytes": model_bytes(model)}


def model_bytes(model: nn.Module) -> int:
    """Deployable bytes: weights at each op's ``bits``, 32-bit bias per output channel."""
    total = 0.0
    for op in model.modules():
        bits = getattr(op, "bits", None)
        if bits is None or not hasattr(op, "spec"):
            continue
        for m in op.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                total += m.weight.numel() * bits / 8 + m.weight.shape[0] * 4
    return int(round(total))
