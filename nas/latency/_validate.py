"""Fit a host profile's whole-network calibration and validate any profile against end-to-end
timings of sampled candidates (fp32: every block float; int8: every block at 8 bits)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.stats

from nas.latency._calibration import Calibration
from nas.latency._host import measure_candidate, save_calibration
from nas.latency._profile import DeviceProfile
from nas.space import Candidate, load_space

__all__ = ["kendall_tau", "end_to_end", "calibrate_host", "validate_profile"]

Progress = Callable[[str, int, int], None]


def kendall_tau(a, b) -> float:
    """Kendall's tau-b (SciPy), nan when either sequence is constant."""
    return float(scipy.stats.kendalltau(a, b).statistic)


def _candidates(space_name: str, n: int, seed: int) -> list[Candidate]:
    return load_space(space_name).sample_many(n, seed)


def end_to_end(cands: list[Candidate], profile: DeviceProfile, progress: Progress | None = None):
    """Per precision: ({kind: summed op ms}, op counts, boundary Melems, measured ms)."""
    out = {"f32": ([], [], [], []), "i8": ([], [], [], [])}
    total = 2 * len(cands)
    done = 0
    with tempfile.TemporaryDirectory(prefix="hwnas-e2e-") as tmp:
        for cand in cands:
            for prec, c in (("f32", cand.replace_bits(32)), ("i8", cand.replace_bits(8))):
                s, n, e = profile.uncalibrated_parts(c)  # measures missing ops (host) first
                m = measure_candidate(c, prec == "i8", Path(tmp))
                for lst, v in zip(out[prec], (s, n, e, m)):
                    lst.append(v)
                done += 1
                if progress:
                    progress(f"{prec} {c.key[:40]}", done, total)
    return out


def calibrate_host(profile: DeviceProfile, spaces: list[str], n: int, seed: int = 0,
                   progress: Progress | None = None) -> dict[str, Calibration]:
    cands = [c for s in spaces for c in _candidates(s, n, seed)]
    data = end_to_end(cands, profile, progress)
    calib = {p: Calibration.fit(*data[p], source=f"{len(cands)} candidates of "
                                f"{', '.join(spaces)}, seed {seed}") for p in data}
    save_calibration(calib)
    profile.calibration.update(calib)
    profile._block_cache.clear()
    return calib


def validate_profile(profile: DeviceProfile, spaces: list[str], n: int, seed: int = 1,
                     progress: Progress | None = None, raw_out: dict | None = None) -> dict:
    """Share within +-5% / +-10%, mean absolute % error and Kendall tau, per precision."""
    cands = [c for s in spaces for c in _candidates(s, n, seed)]
    data = end_to_end(cands, profile, progress)
    if raw_out is not None:
        raw_out.update({k: [list(col) for col in v] for k, v in data.items()})
    result = {"spaces": spaces, "samples": len(cands), "seed": seed}
    for prec, (sums, nops, melems, meas) in data.items():
        cal = profile.calibration[prec]
        pred = np.array([cal.apply(sum(cal.op_scale(kd) * v for kd, v in s.items()), k, e)
                         for s, k, e in zip(sums, nops, melems)])
        meas = np.array(meas)
        err = pred / meas - 1
        result[prec] = {
            "within_5pct": round(float(np.mean(np.abs(err) <= 0.05)), 3),
            "within_10pct": round(float(np.mean(np.abs(err) <= 0.10)), 3),
            "mape_pct": round(float(np.mean(np.abs(err)) * 100), 2),
            "kendall_tau": round(kendall_tau(pred, meas), 3),
            "uncalibrated_mean_error_pct": round(float(np.mean(
                np.array([sum(s.values()) for s in sums]) / meas - 1) * 100), 2),
        }
    return result
