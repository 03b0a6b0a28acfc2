"""Fit a host profile's whole-network calibration and validate any profile against end-to-end
timings of sampled candidates (fp32: every block float; int8: every block at 8 bits).

Whole networks are timed with the yardstick (``nas.latency._yardstick``): exported for the
profile's runtime (ONNX for ``host``, .tflite for ``host-litert``), then timed in interleaved
rounds, a group of networks at a time, and summarised by ``YARDSTICK_STAT``. Validation times
the same networks twice and reports how often the two timings agree (the yardstick's
self-agreement) beside the predictor's figures: a predictor cannot be judged more finely than
its yardstick."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from nas.errors import DeviceError
from nas.latency._calibration import Calibration
from nas.latency._fit import kendall_tau
from nas.latency._host import measure_ops, network_runner, save_calibration
from nas.latency._profile import DeviceProfile
from nas.latency._yardstick import ROUNDS, RUNS, YARDSTICK_STAT, agreement, time_interleaved
from nas.space import Candidate, load_space

__all__ = ["kendall_tau", "end_to_end", "calibrate_host", "validate_profile", "time_ops_of", "GROUP"]

Progress = Callable[[str, int, int], None]
GROUP = 16  # networks loaded and timed interleaved at once (bounds memory; 8-32 MB each)


def _candidates(space_name: str, n: int, seed: int) -> list[Candidate]:
    return load_space(space_name).sample_many(n, seed)


def _runtime(profile: DeviceProfile) -> str:
    if profile.host_runtime is None:
        raise DeviceError(f"device {profile.name} is {profile.provenance}: only a host profile "
                          f"(host, host-litert) can be timed on this machine")
    return profile.host_runtime


def time_ops_of(profile: DeviceProfile, cands: list[Candidate],
                progress: Callable[[int, int], None] | None = None) -> None:
    """Time (or read from the host cache) every op of ``cands`` in fp32 and int8 and add them to
    ``profile``'s table, before their whole networks are timed: host-litert converts each op to
    .tflite (about 1.7 s an op), minutes that ``progress`` can show."""
    ops = [(op, profile.exec_bits(op.bits)) for c in cands for b in (32, 8) for op in c.replace_bits(b).ops()]
    profile.table.update(measure_ops(ops, progress=progress, runtime=_runtime(profile)))


def end_to_end(cands: list[Candidate], profile: DeviceProfile, progress: Progress | None = None,
               repeats: int = 1, rounds: int = ROUNDS, runs: int = RUNS, group: int = GROUP,
               seed: int = 0, stats_out: list | None = None):
    """Per precision: ({kind: summed op ms}, op counts, boundary Melems, measured ms), the
    networks timed in ``profile``'s runtime with the yardstick (``YARDSTICK_STAT``).
    ``repeats`` = 2 times every group twice (another interleaving order) and returns a fifth
    list per precision: the second timing. ``stats_out`` receives every statistic of every
    timing ({"precision", "key", "repeat", **stats})."""
    runtime = _runtime(profile)
    nets = [(prec, c) for cand in cands for prec, c in (("f32", cand.replace_bits(32)), ("i8", cand.replace_bits(8)))]
    out: dict[str, tuple[list, ...]] = {"f32": tuple([] for _ in range(4 + (repeats > 1))),
                                        "i8": tuple([] for _ in range(4 + (repeats > 1)))}
    total = 2 * len(nets)  # progress: each network exported, then timed
    done = 0
    for start in range(0, total, group):
        chunk = nets[start:start + group]
        with tempfile.TemporaryDirectory(prefix="hwnas-e2e-") as tmp:
            runners = []
            for j, (prec, c) in enumerate(chunk):
                s, n, e = profile.uncalibrated_parts(c)  # measures missing ops (host) first
                for lst, v in zip(out[prec], (s, n, e)):
                    lst.append(v)
                runners.append(network_runner(c, prec == "i8", Path(tmp), runtime=runtime, stem=f"net{j}"))
                done += 1
                if progress:
                    progress(f"exported {prec} {c.key[:40]}", done, total)
            timings = [time_interleaved(runners, rounds, runs, seed=seed + 1000 * r + start)
                       for r in range(repeats)]
            del runners
        for j, (prec, c) in enumerate(chunk):
            out[prec][3].append(timings[0][j][YARDSTICK_STAT])
            if repeats > 1:
                out[prec][4].append(timings[1][j][YARDSTICK_STAT])
            if stats_out is not None:
                stats_out += [{"precision": prec, "key": c.key, "repeat": r, **timings[r][j]} for r in range(repeats)]
        done += len(chunk)
        if progress:
            progress(f"timed {len(chunk)} networks", done, total)
    return out


def calibrate_host(profile: DeviceProfile, spaces: list[str], n: int, seed: int = 0,
                   progress: Progress | None = None, rounds: int = ROUNDS, runs: int = RUNS) -> dict[str, Calibration]:
    runtime = _runtime(profile)
    cands = [c for s in spaces for c in _candidates(s, n, seed)]
    data = end_to_end(cands, profile, progress, rounds=rounds, runs=runs)
    calib = {p: Calibration.fit(*data[p][:4], source=f"{len(cands)} candidates of "
                                f"{', '.join(spaces)}, seed {seed}, {YARDSTICK_STAT} of interleaved rounds")
             for p in data}
    save_calibration(calib, runtime=runtime)
    profile.calibration.update(calib)
    profile._block_cache.clear()
    return calib


def validate_profile(profile: DeviceProfile, spaces: list[str], n: int, seed: int = 1,
                     progress: Progress | None = None, raw_out: dict | None = None, rounds: int = ROUNDS,
                     runs: int = RUNS) -> dict:
    """Share within +-5% / +-10%, mean absolute % error and Kendall tau, per precision, against
    the yardstick's first timing; beside them the yardstick's self-agreement (its second timing
    of the same networks within +-10% of the first)."""
    cands = [c for s in spaces for c in _candidates(s, n, seed)]
    stats: list = []
    data = end_to_end(cands, profile, progress, repeats=2, rounds=rounds, runs=runs, stats_out=stats)
    if raw_out is not None:
        raw_out.update({k: [list(col) for col in v] for k, v in data.items()})
        raw_out["stats"] = stats
    result = {"spaces": spaces, "samples": len(cands), "seed": seed,
              "yardstick": f"{YARDSTICK_STAT} of {rounds} interleaved rounds of {runs} runs"}
    for prec, (sums, nops, melems, meas, meas2) in data.items():
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
            "yardstick_within_10pct": round(agreement(meas, meas2, 0.10), 3),
            "yardstick_within_5pct": round(agreement(meas, meas2, 0.05), 3),
        }
    return result
