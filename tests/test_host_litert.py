"""The host-litert profile (issue 28, item 1): ops exported as .tflite and timed in the LiteRT
interpreter (XNNPACK, 1 thread) on this machine, cached apart from the onnxruntime host's."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nas
from nas.cli import app
from nas.errors import DeviceError
from nas.export import litert
from nas.latency import _host as host
from nas.latency import end_to_end, load_device

ROOT = Path(__file__).resolve().parents[1]
needs_litert = pytest.mark.skipif(not litert.available(), reason='needs pip install "hwnas[litert]"')


def test_its_cache_is_apart_from_the_onnxruntime_hosts():
    ort_dir, lite_dir = host.cache_dir("onnxruntime"), host.cache_dir("litert")
    assert ort_dir != lite_dir and ort_dir.parent.name == "host" and lite_dir.parent.name == "host-litert"
    assert "litert" in lite_dir.name and f"-t{host.THREADS}" in lite_dir.name
    with pytest.raises(DeviceError, match="onnxruntime or litert"):
        host.cache_dir("tvm")


@needs_litert
def test_the_profile_is_a_measured_host_profile_and_says_it_is_uncalibrated(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))  # a fresh machine: nothing timed, nothing calibrated
    from nas.latency._profile import _read_profile

    prof = _read_profile(ROOT / "device_profiles" / "host-litert.yaml")
    assert prof.host_runtime == "litert" and prof.provenance == "measured" and prof.runtime == "litert-xnnpack"
    assert prof.is_uncalibrated and "uncalibrated" in prof.label and "uncalibrated" in prof.provenance_summary
    assert "--device host-litert --calibrate" in prof.provenance_summary
    assert not load_device("pixel7").is_uncalibrated  # only host profiles are calibrated on this machine
    r = CliRunner().invoke(app, ["devices"], env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if line.lstrip("│ ").startswith("host-litert"))
    assert "litert-xnnpack" in row and "not yet validated" in row


def test_without_the_extra_it_is_one_clear_error_naming_it():
    """The extra really absent: the interpreter's package is made unimportable in a fresh process."""
    code = ("import sys; sys.modules['ai_edge_litert'] = None; sys.modules['litert_torch'] = None; "
            "from nas.cli import app; sys.argv = ['nas'] + sys.argv[1:]; app()")
    for args in (["profile", "build", "--device", "host-litert", "--samples", "1"],
                 ["latency", "--device", "host-litert", "--reference", "mobilenet_v2_1.0_224"]):
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                           env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
        assert r.returncode == 2, r.stderr
        assert 'pip install "hwnas[litert]"' in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_only_host_profiles_are_timed_here():
    r = CliRunner().invoke(app, ["profile", "validate", "--device", "pixel7"])
    assert r.exit_code == 2 and "host, host-litert" in r.output


@pytest.mark.slow
@needs_litert
def test_it_times_ops_as_tflite_prices_a_candidate_and_times_whole_tflite_networks(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    from nas.latency._profile import _read_profile

    prof = _read_profile(ROOT / "device_profiles" / "host-litert.yaml")
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224").replace(resolution=32)
    ms = prof.latency_ms(cand, num_classes=10)  # times its ops first, lazily
    assert 0 < ms < 100
    assert prof.provenance_for(cand, num_classes=10) == "measured"  # every op is now a table entry
    table = (host.cache_dir("litert") / "table.json").read_text()
    assert all(op.key in table for op in cand.ops(num_classes=10))
    assert not (host.cache_dir("onnxruntime") / "table.json").exists()  # the onnxruntime host's is untouched
    # whole networks: .tflite files in the interpreter, timed twice with the yardstick
    stats: list = []
    data = end_to_end([cand.replace(resolution=32)], prof, repeats=2, rounds=2, runs=2, stats_out=stats)
    for prec in ("f32", "i8"):
        sums, nops, melems, first, second = data[prec]
        assert nops[0] > 0 and first[0] > 0 and second[0] > 0
    assert len(stats) == 4
    r = CliRunner().invoke(app, ["latency", "--device", "host-litert", cand.key, "--classes", "10"])
    assert r.exit_code == 0 and "uncalibrated" in r.output, r.output
