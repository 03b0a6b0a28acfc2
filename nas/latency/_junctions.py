"""Junctions: what a host runtime does between two consecutive ops that neither op timed alone
shows (issue 28, item 3; nn-Meter's kernel detection does the same on phones).

In int8 an op is timed alone with its boundary Quantize/Dequantize stripped, as it runs inside a
network; what the runtime really does at the boundary (fuse a Quantize/Dequantize pair or keep
it, cancel NCHW<->NHWC transposes between two integer kernels or not) depends on both
neighbours. Every pair of consecutive ops of a sample of networks is exported as one model and
timed like an op (fastest of repeated runs); its junction is the pair's time less the two ops'
table entries. ``fit_junctions`` fits a junction model per producing op kind (ms + ms per Melem
of the tensor handed on). Pair timings are cached beside the host table (``pairs.json``).

**Measured, not priced.** ``benchmarks/int8_junctions.py`` judged junction pricing on the host
profiles' validation networks (BENCHMARKS.md, issue 28 item 3): on onnxruntime the junctions are
small (in int8 pairs run faster than their two ops: transposes and Quantize/Dequantize cancel
between neighbours), while whole networks run about 20% slower than their ops summed, a
whole-network effect; pricing them did not price networks better, so no profile prices them.
This module stays as the measurement. Pairs of two precisions (a float pooling op beside int8
ops) cannot be exported as one model and are left out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from nas.errors import DeviceError
from nas.latency._host import cache_dir, time_into_cache
from nas.latency._profile import DeviceProfile
from nas.space import Candidate, OpSpec

__all__ = ["measure_junctions", "fit_junctions", "junction_melems"]

MIN_FOR_SLOPE = 8  # junctions of a kind needed to fit its per-Melem term
Junction = tuple[str, float, float]  # (producing op kind, Melems handed on, ms beyond the two ops alone)


def junction_melems(op: OpSpec) -> float:
    """Millions of elements ``op`` hands to the next op."""
    ho, wo = op.out_hw  # (1, 1) for global pooling and linear layers
    return ho * wo * op.cout / 1e6


def measure_junctions(profile: DeviceProfile, cands: list[Candidate], bits: int,
                      progress: Callable[[int, int], None] | None = None) -> list[Junction]:
    """Every junction of ``cands`` at ``bits`` (32 or 8) between two ops of the same precision,
    timing the pairs not yet cached."""
    runtime = profile.host_runtime
    if runtime is None:
        raise DeviceError(f"device {profile.name}: junctions are timed on this machine, in a host profile only")
    pairs = []
    for cand in cands:
        ops = [replace(o, bits=profile.exec_bits(o.bits)) for o in cand.replace_bits(bits).ops()]
        profile._ensure_measured(ops)
        # a pair of two precisions (a float pooling op beside int8 ones) cannot be exported at
        # one: left out, as if its junction were nothing
        pairs += [(a, b) for a, b in zip(ops, ops[1:]) if a.bits == b.bits]
    cache = time_into_cache(cache_dir(runtime) / "pairs.json", {f"{a.key}|{b.key}": ([a, b], a.bits) for a, b in pairs},
                            runtime, progress, prefix="hwnas-pair-")
    out = []
    for a, b in pairs:
        ta, tb = profile.table[profile.table_key(a, a.bits)], profile.table[profile.table_key(b, b.bits)]
        out.append((a.kind, junction_melems(a), cache[f"{a.key}|{b.key}"] - ta - tb))
    return out


def fit_junctions(junctions: list[Junction]) -> dict[str, list[float]]:
    """Per producing op kind, least squares of the junction on [1, Melems handed on] (the mean
    alone for a kind seen fewer than ``MIN_FOR_SLOPE`` times)."""
    by: dict[str, list[tuple[float, float]]] = {}
    for kind, melems, ms in junctions:
        by.setdefault(kind, []).append((melems, ms))
    model = {}
    for kind, pts in sorted(by.items()):
        m = np.array(pts)
        if len(m) < MIN_FOR_SLOPE:  # a slope from a few points extrapolates wildly: the mean alone
            model[kind] = [float(m[:, 1].mean()), 0.0]
            continue
        coef = np.linalg.lstsq(np.column_stack([np.ones(len(m)), m[:, 0]]), m[:, 1], rcond=None)[0]
        model[kind] = [float(coef[0]), float(coef[1])]
    return model
