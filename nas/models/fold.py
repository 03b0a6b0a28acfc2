"""Fold batch norm into the preceding convolution for inference export."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["fold_batchnorm"]


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) in which every Conv2d followed by BatchNorm2d inside an
    nn.Sequential carries the folded scale and bias, and the BatchNorm is an Identity. The
    exported graph then has plain Conv nodes with initializer weights and biases, which
    onnxruntime's static quantizer can quantize."""
    model = copy.deepcopy(model).eval()
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        mods = list(seq._modules.items())
        for (_, conv), (bn_name, bn) in zip(mods, mods[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                with torch.no_grad():
                    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                    new_bias = (bias - bn.running_mean) * scale + bn.bias
                    conv.bias = nn.Parameter(new_bias)
                seq._modules[bn_name] = nn.Identity()
    return model
