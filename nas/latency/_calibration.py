"""Whole-network calibration of a device profile: the correction from a sum of isolated op
latencies to what the runtime takes for the network, fitted to end-to-end timings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nas.errors import DeviceError
from nas.latency._estimator import nnls
from nas.space import OpSpec

__all__ = ["Calibration", "KINDS", "boundary_melems"]

KINDS = ("conv", "mbconv", "shuffle", "shuffle_x", "maxpool", "gap", "linear")


@dataclass
class Calibration:
    """Whole-network correction of isolated op latencies:

    ``sum(kind_scale[op.kind] * op_ms) + per_op_ms * n_ops + per_melem_ms * boundary_melems
    + offset_ms``

    A scale per op kind absorbs what the runtime does differently inside a network (warm or
    cold caches, fusions across ops); ``n_ops`` models the per-run overhead an isolated timing
    pays once per op but a network once; ``boundary_melems`` (millions of elements entering
    and leaving each op) models layout changes and re-quantization at op boundaries that the
    runtime removes between consecutive ops.
    """

    scale: float = 1.0  # for kinds without their own scale
    kind_scale: dict[str, float] = field(default_factory=dict)
    per_op_ms: float = 0.0
    per_melem_ms: float = 0.0
    offset_ms: float = 0.0
    source: str = "none"

    def __post_init__(self) -> None:
        nums = {"scale": self.scale, "per_op_ms": self.per_op_ms, "per_melem_ms": self.per_melem_ms,
                "offset_ms": self.offset_ms}
        if not isinstance(self.kind_scale, dict):
            raise DeviceError(f"calibration.kind_scale: expected a mapping, got {self.kind_scale!r}")
        nums.update({f"kind_scale.{k}": v for k, v in self.kind_scale.items()})
        for k, v in nums.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise DeviceError(f"calibration.{k}: expected a finite number, got {v!r}")

    def op_scale(self, kind: str) -> float:
        return self.kind_scale.get(kind, self.scale)

    def apply(self, scaled_sum_ms: float, n_ops: int, boundary_melems: float = 0.0) -> float:
        """``scaled_sum_ms`` is the sum of op latencies already multiplied by ``op_scale``."""
        raw = scaled_sum_ms + self.per_op_ms * n_ops + self.per_melem_ms * boundary_melems + self.offset_ms
        return max(raw, 0.05 * scaled_sum_ms)  # never let a correction term drive it to zero

    @classmethod
    def fit(cls, kind_sums: list[dict[str, float]], n_ops, melems, measured, source: str) -> "Calibration":
        """Least squares on relative error. Kind scales are kept non-negative (a kind cannot
        take negative time); the per-op, per-element and offset terms may take either sign
        (an isolated timing pays overheads a network does not). Chosen over a single global
        scale by leave-one-out cross-validation within the calibration sample (BENCHMARKS.md)."""
        y = np.asarray(measured, float)
        kinds = [k for k in KINDS if any(d.get(k, 0) > 0 for d in kind_sums)]
        K = np.array([[d.get(k, 0.0) for k in kinds] for d in kind_sums]).reshape(len(y), len(kinds))
        F = np.column_stack([n_ops, melems, np.ones(len(y))])
        A = np.column_stack([K, F, -F]) / y[:, None]  # free-sign terms as a difference of two
        c = nnls(A, np.ones(len(y)))
        nk = len(kinds)
        free = c[nk:nk + 3] - c[nk + 3:]
        return cls(scale=1.0, kind_scale={k: float(v) for k, v in zip(kinds, c[:nk])},
                   per_op_ms=float(free[0]), per_melem_ms=float(free[1]), offset_ms=float(free[2]),
                   source=source)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "kind_scale": dict(self.kind_scale), "per_op_ms": self.per_op_ms,
                "per_melem_ms": self.per_melem_ms, "offset_ms": self.offset_ms, "source": self.source}



def boundary_melems(op: OpSpec) -> float:
    """Millions of elements entering and leaving ``op``."""
    ho, wo = op.out_hw
    return (op.h * op.w * op.cin + ho * wo * op.cout) / 1e6
