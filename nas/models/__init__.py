"""Torch modules built from a candidate's op list, fake quantization, BN folding, counting."""

from nas.models._blocks import build_op
from nas.models._builder import Network, build_model
from nas.models._counting import count, model_bytes
from nas.models._fold import fold_batchnorm
from nas.models._quant import ActFakeQuant, apply_fake_quant, strip_fake_quant

__all__ = [
    "ActFakeQuant",
    "Network",
    "apply_fake_quant",
    "build_model",
    "build_op",
    "count",
    "fold_batchnorm",
    "model_bytes",
    "strip_fake_quant",
]
