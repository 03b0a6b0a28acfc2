"""Fold batch norm into the preceding convolution for inference export."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batchnorm"]


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) in which every Conv2d followed by BatchNorm2d inside an
    nn.Sequential is replaced by one Conv2d carrying the folded scale and bias (PyTorch's
    ``fuse_conv_bn_eval``), and the BatchNorm by an Identity. The exported graph then has plain
    Conv nodes with initializer weights and biases, which onnxruntime's static quantizer can
    quantize."""
    model = copy.deepcopy(model).eval()
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for conv_name, bn_name in zip(names, names[1:]):
            conv, bn = seq._modules[conv_name], seq._modules[bn_name]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[conv_name] = fuse_conv_bn_eval(conv, bn)
                seq._modules[bn_name] = nn.Identity()
    return model
