"""Issue 28, item 3: op pairs timed as one model price what the runtime does between two ops."""

import json

import numpy as np
import pytest
from conftest import SPACES, sample

import nas
from nas.errors import DeviceError
from nas.latency import Calibration, fit_junctions, junction_melems, load_device, measure_junctions


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


def test_calibration_keeps_its_junctions_and_refuses_bad_ones():
    c = Calibration(junction={"mbconv": [0.01, 0.2]}, source="x")
    assert Calibration(**c.to_dict()) == c
    assert "junction" not in Calibration().to_dict()  # calibration.json of a profile without stays as it was
    for bad in ({"mbconv": [0.1]}, {"mbconv": [0.1, float("nan")]}, [0.1, 0.2]):
        with pytest.raises(DeviceError, match="junction"):
            Calibration(junction=bad)


@pytest.mark.parametrize("space_name", SPACES)
def test_junctions_price_every_op_but_the_last_on_both_paths(space_name):
    """The block-cached price and the op-by-op breakdown agree with junctions, and the junction of
    the network's last op (which hands nothing on) is never counted."""
    prof = load_device("pixel7")
    model = {"conv": [0.01, 0.3], "mbconv": [0.002, 0.2], "shuffle": [0.003, 0.1], "shuffle_x": [0.001, 0.1],
             "gap": [0.004, 0.0], "linear": [0.5, 0.0], "maxpool": [0.001, 0.05]}
    for cand in sample(space_name, 5, seed=4):
        before = prof.latency_ms(cand)
        rows = prof.breakdown(cand)
        cal = prof.calibration_for(cand)
        extra = sum(cal.op_scale(r.op.kind) * cal.junction_ms(r.op) for r in rows[:-1])
        assert extra == 0.0
        prec = "i8" if cand.is_quantized else "f32"
        saved = prof.calibration[prec]
        try:
            prof.calibration[prec] = Calibration(**{**saved.to_dict(), "junction": model})
            prof._block_cache.clear()
            cal = prof.calibration[prec]
            want = sum(cal.op_scale(r.op.kind) * (model[r.op.kind][0] + model[r.op.kind][1] * junction_melems(r.op))
                       for r in rows[:-1])
            assert prof.latency_ms(cand) == pytest.approx(prof.predict_from_breakdown(cand, rows), rel=1e-9)
            assert want > 0 and prof.latency_ms(cand) - before == pytest.approx(want, rel=1e-6)
            sums, _, _ = prof.uncalibrated_parts(cand)
            raw = sum(r.ms for r in rows)
            assert sum(sums.values()) == pytest.approx(raw + sum(cal.junction_ms(r.op) for r in rows[:-1]))
        finally:
            prof.calibration[prec] = saved
            prof._block_cache.clear()


def test_pairs_are_timed_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    prof = load_device("host")
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224").replace(resolution=32)
    calls = []
    js = measure_junctions(prof, [cand], 8, progress=lambda i, n: calls.append((i, n)))
    ops = cand.replace_bits(8).ops()
    assert len(js) == len(ops) - 1 and [k for k, _, _ in js] == [o.kind for o in ops[:-1]]
    assert calls and calls[-1][0] == calls[-1][1] == len(ops) - 1  # all distinct here
    assert all(np.isfinite(ms) and abs(ms) < 50 for _, _, ms in js)
    cached = json.loads(next(tmp_path.rglob("pairs.json")).read_text())
    assert len(cached) == len(ops) - 1
    calls.clear()
    assert measure_junctions(prof, [cand], 8, progress=lambda i, n: calls.append(i)) == js and calls == []
    with pytest.raises(DeviceError, match="host profile"):
        measure_junctions(load_device("pixel7"), [cand], 8)


@pytest.mark.slow
def test_calibration_times_pairs_fits_junctions_and_keeps_them(tmp_path, monkeypatch):
    """`nas profile build --calibrate` on the onnxruntime host: int8 junctions timed on the
    calibration networks' pairs, kept in calibration.json, and priced by the reloaded profile."""
    from nas.latency import _validate, calibrate_host

    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    small = [c.replace(resolution=32) for c in nas.load_space("mobilenetv3").sample_many(3, 0)]
    monkeypatch.setattr(_validate, "_candidates", lambda space, n, seed: small[:n])
    prof = load_device("host")
    seen = []
    cal = calibrate_host(prof, ["mobilenetv3"], 3, rounds=2, runs=2, pair_progress=lambda i, n: seen.append(n))
    assert seen and cal["i8"].junction and not cal["f32"].junction  # JUNCTIONS: int8 on onnxruntime
    assert set(cal["i8"].junction) <= {"conv", "mbconv", "gap", "linear"}
    assert "junctions from op pairs" in cal["i8"].source
    saved = json.loads(next(tmp_path.rglob("calibration.json")).read_text())["calibration"]
    assert saved["i8"]["junction"] == cal["i8"].junction and "junction" not in saved["f32"]
    j = cal["i8"].junction
    assert j["gap"][1] == j["linear"][1] == j["conv"][1] == 0.0  # 3, 3 and 6 junctions: too few for a slope
    again = load_device("host")
    assert again.calibration["i8"] == cal["i8"]
    c8 = small[0].replace_bits(8)
    assert again.latency_ms(c8) == pytest.approx(again.predict_from_breakdown(c8, again.breakdown(c8)), rel=1e-9)
