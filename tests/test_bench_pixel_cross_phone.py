"""benchmarks/pixel_cross_phone.py (issue 28): the leave-one-phone-out fit on inputs whose
answer is known, the row selection on published rows, and the script on the shipped data."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import pixel_cross_phone as pcp  # noqa: E402


def test_leave_one_phone_out_overall_scale_has_the_known_answer():
    # phone A runs exactly as predicted, phone B twice as slow: held out, each gets the other's scale
    T = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    y = np.array([1.0, 2.0, 2.0, 6.0])
    pred, factors = pcp.leave_one_group_out(T, y, ["A", "A", "B", "B"], pcp.fit_scale, overall=True)
    assert factors["A"][0] == pytest.approx(2.0) and factors["B"][0] == pytest.approx(1.0)
    np.testing.assert_allclose(pred / y - 1, [1.0, 1.0, -0.5, -0.5])
    e = pcp.errors(pred, y)
    assert e == {"n": 4, "mape_pct": 75.0, "median_signed_pct": 25.0, "worst_pct": 100.0}


def test_leave_one_phone_out_two_factors_recover_a_shared_truth():
    rng = np.random.default_rng(0)
    T = rng.uniform(0.5, 5.0, size=(9, 3))
    y = 0.6 * T[:, 0] + 1.7 * T[:, 1] + T[:, 2]  # every phone obeys the same two factors
    pred, factors = pcp.leave_one_group_out(T, y, ["P1"] * 3 + ["P2"] * 3 + ["P3"] * 3, pcp.fit_dense_dw)
    np.testing.assert_allclose(pred, y, rtol=1e-6)
    for a in factors.values():
        np.testing.assert_allclose(a, [0.6, 1.7], rtol=1e-6)


def test_rows_are_used_like_with_like():
    row = {"device": "Pixel 2", "model": "MobileNet v2 1.0X (XNNPACK end2end_bench)", "threads": "1",
           "precision": "float32", "backend": "CPU (XNNPACK)"}
    assert pcp.classify(row) == ("Pixel 2", ("mobilenetv2", "mobilenet_v2_1.0_224"), "fit")
    assert pcp.classify({**row, "threads": "as many threads as big cores"})[2].startswith("multi-thread")
    assert pcp.classify({**row, "model": "MobileNet v1 1.0X"})[2] == "MobileNetV1: not one of the spaces"
    assert "no space" in pcp.classify({**row, "model": "MnasNet-A1"})[2]
    assert pcp.classify({**row, "device": "Pixel (1)"})[0] == "Pixel 1"


def test_the_pixel7_rules_reproduce_the_pixel7_profile():
    import nas
    from nas.latency import load_device

    c = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_1.0_224")
    est = pcp.core_estimator("Pixel 7", pcp.pixel7_rules())
    for bits in (32, 8):
        assert pcp.terms(c.replace_bits(bits), est).sum() == pytest.approx(load_device("pixel7").latency_ms(
            c.replace_bits(bits)), rel=1e-9)


@pytest.mark.skipif(not pcp.DATA.is_file(), reason="needs the sibling shared/device_data folder")
def test_the_script_runs_on_the_published_rows(tmp_path):
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pixel_cross_phone.py"), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    assert len(r["rows_used"]) == 15 and {u["phone"] for u in r["rows_used"]} == {"Pixel 1", "Pixel 2", "Pixel 3a",
                                                                                   "Pixel 4"}
    shipped = json.loads((ROOT / "benchmarks" / "results" / "pixel_cross_phone.json").read_text())
    assert r["arms"] == shipped["arms"]  # the committed figures are what the script gives
