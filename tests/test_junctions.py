"""Issue 28, item 3: op pairs timed as one model measure what the runtime does between two ops
(measured by benchmarks/int8_junctions.py; no profile prices them: BENCHMARKS.md)."""

import json

import numpy as np
import pytest

import nas
from nas.errors import DeviceError
from nas.latency import fit_junctions, junction_melems, load_device, measure_junctions


def test_fit_recovers_a_junction_model_per_producing_kind():
    rng = np.random.default_rng(0)
    truth = {"mbconv": [0.02, 0.5], "conv": [-0.01, 0.1]}
    js = [(k, m, truth[k][0] + truth[k][1] * m) for k in truth for m in rng.uniform(0.01, 0.5, 20)]
    got = fit_junctions(js)
    assert set(got) == set(truth)
    for k in truth:
        assert got[k] == pytest.approx(truth[k], abs=1e-9)
    few = [("gap", 0.001, 0.01), ("gap", 0.002, 0.03)]  # two points: no slope to extrapolate from
    assert fit_junctions(few) == {"gap": [pytest.approx(0.02), 0.0]}


def test_pairs_are_timed_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    prof = load_device("host")
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224").replace(resolution=32)
    calls = []
    js = measure_junctions(prof, [cand], 8, progress=lambda i, n: calls.append((i, n)))
    ops = cand.replace_bits(8).ops()
    same = [(a, b) for a, b in zip(ops, ops[1:]) if a.bits == b.bits]
    assert len(same) < len(ops) - 1  # the float pooling op beside int8 ones: no one-precision pair
    assert [k for k, _, _ in js] == [a.kind for a, _ in same]
    assert calls and calls[-1][0] == calls[-1][1] == len(same)  # all distinct here
    assert all(np.isfinite(ms) and abs(ms) < 50 for _, _, ms in js)
    assert [m for _, m, _ in js] == [junction_melems(a) for a, _ in same]
    cached = json.loads(next(tmp_path.rglob("pairs.json")).read_text())
    assert len(cached) == len(same)
    calls.clear()
    assert measure_junctions(prof, [cand], 8, progress=lambda i, n: calls.append(i)) == js and calls == []
    with pytest.raises(DeviceError, match="host profile"):
        measure_junctions(load_device("pixel7"), [cand], 8)

