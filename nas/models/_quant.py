"""Fake quantization for quantization-aware (proxy) training.

Every conv / linear inside an op whose ``bits`` is below 32 gets:
- weights: per-output-channel symmetric quantization at the op's bits,
- inputs: 8-bit asymmetric per-tensor quantization with running min/max (an exponential
  average in training, frozen in eval),
both with the straight-through estimator (the forward pass sees quantized values, the gradient
passes through as if it did not). Implemented with ``torch.nn.utils.parametrize`` and forward
pre-hooks, so the module tree stays the builder's; ``strip_fake_quant`` bakes the quantized
weights in and removes the hooks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from nas.space import FLOAT_BITS

__all__ = ["WeightFakeQuant", "ActFakeQuant", "apply_fake_quant", "strip_fake_quant"]


class WeightFakeQuant(nn.Module):
    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits
        self.qmax = 2 ** (bits - 1) - 1

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if w.is_meta:  # a template on the meta device (nas.supernet): shapes only, no kernel
            return w
        # fused kernel; its gradient is the straight-through estimator
        scale = w.detach().reshape(w.shape[0], -1).abs().amax(1).clamp_min(1e-8) / self.qmax
        zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
        return torch.fake_quantize_per_channel_affine(w, scale.float(), zero, 0, -self.qmax, self.qmax)


class ActFakeQuant(nn.Module):
    def __init__(self, bits: int = 8, momentum: float = 0.1):
        super().__init__()
        self.levels = 2 ** bits - 1
        self.momentum = momentum
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Tensor arithmetic only: no value leaves the device, so a CUDA step never waits on the
        # host (reading lo/hi as Python floats cost a synchronisation per quantized layer)
        if self.training:
            lo, hi = (v.float() for v in torch.aminmax(x.detach()))  # the running range stays float32 (autocast)
            first = ~self.initialized
            self.lo.copy_(torch.where(first, lo, torch.lerp(self.lo, lo, self.momentum)))
            self.hi.copy_(torch.where(first, hi, torch.lerp(self.hi, hi, self.momentum)))
            self.initialized.fill_(True)
        # free on the CPU; not inside torch.compile, where reading a value back breaks the graph
        # (and the broken graph failed the backward pass: BENCHMARKS.md, issue 15 step options)
        if x.device.type == "cpu" and not torch.compiler.is_compiling() and \
                not bool(torch.isfinite(self.lo) & torch.isfinite(self.hi)):
            raise FloatingPointError("non-finite activations (training diverged)")
        lo = torch.clamp(self.lo, max=0.0)  # zero must be exactly representable
        hi = torch.maximum(self.hi, lo + 1e-6)
        scale = ((hi - lo) / self.levels).float().reshape(1)
        zero = torch.round(-lo / scale).clamp(0, self.levels).to(torch.int32).reshape(1)
        # fused kernel; its gradient is the straight-through estimator
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, self.levels)


def apply_fake_quant(model: nn.Module) -> nn.Module:
    """Attach fake quantization in place to every conv/linear of every op with bits < 32."""
    for op in model.modules():
        bits = getattr(op, "bits", FLOAT_BITS)
        if not hasattr(op, "spec") or bits >= FLOAT_BITS:
            continue
        for m in op.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and not parametrize.is_parametrized(m, "weight"):
                parametrize.register_parametrization(m, "weight", WeightFakeQuant(bits))
                m.act_quant = ActFakeQuant(8)
                m._act_hook = m.register_forward_pre_hook(lambda mod, args: (mod.act_quant(args[0]),))
    return model


def strip_fake_quant(model: nn.Module) -> nn.Module:
    """Bake quantized weights into plain parameters and drop the activation hooks."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
            m._act_hook.remove()
            del m.act_quant
            del m._act_hook
    return model
