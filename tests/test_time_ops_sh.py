"""time_ops.sh, the phone path of onboarding: its checks, pinning and cool-down against a
stand-in adb that records what the phone would be asked (no phone here), and the whole loop
run for real on this computer with ``time_ops.sh --local`` (LiteRT's benchmark tool in place of
benchmark_model), imported and used to price fresh candidates."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import nas
from nas.cli import app
from nas.latency import SOC_PRIME_CORES, load_device
from nas.latency._scripts import benchmark_script

runner = CliRunner()

BENCHMARK_RUN = """STARTING!
Num threads: [1]
Graph: [{graph}]
Use xnnpack: [1]
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
Initialized session in 2.041ms.
Running benchmark for at least 5 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=612 first=1021 curr=803 min=790 max=1523 avg=812.4 std=40

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=1240 first=810 curr=805 min=790 max=1100 avg=812.4 std=21

Inference timings in us: Init: 2041, First inference: 1021, Warmup (avg): 812.4, Inference (avg): 812.4
"""

# A stand-in for adb: answers what a Pixel 7 would (SoC, clocks, thermal status), keeps the
# phone's /data/local/tmp in $PHONE, and records every command it is asked to run. taskset is
# recorded and dropped (this machine has 2 cores).
# the Pixel 7's maximum clocks (kHz) per core: 4 Cortex-A55, 2 Cortex-A78, 2 Cortex-X1
PIXEL7_CLOCKS = "0:1803000 1:1803000 2:1803000 3:1803000 4:2350000 5:2350000 6:2850000 7:2850000"
FAKE_ADB = r"""#!/bin/sh
cmd=$1; shift
echo "$cmd $*" >> "$PHONE/adb_calls.txt"
case "$cmd" in
    get-state) echo "${STATE:-device}" ;;
    push) cp -R "$1" "$2" ;;
    shell)
        line="$*"
        case "$line" in
            "getprop ro.board.platform") echo "${SOC:-gs201}" ;;
            *cpuinfo_max_freq*) printf '%s\n' ${CLOCKS:-PIXEL7_CLOCKS} | tr ':' ' ' ;;
            "dumpsys thermalservice") echo "Thermal Status: ${THERMAL:-0}" ;;
            taskset*) set -- $line; shift 2; sh -c "$*" ;;
            *) sh -c "$line" ;;
        esac ;;
esac
""".replace("PIXEL7_CLOCKS", PIXEL7_CLOCKS)


def _fake_benchmark_model(path: Path) -> None:
    body = BENCHMARK_RUN.replace("{graph}", "$graph")
    path.write_text("#!/bin/sh\nfor a in \"$@\"; do case $a in --graph=*) graph=${a#--graph=} ;; esac; done\n"
                    "[ -f \"$graph\" ] || { echo \"ERROR: File $graph does not exist\"; exit 1; }\n"
                    f"cat <<EOF\n{body}EOF\n")
    path.chmod(0o755)


@pytest.fixture
def folder(tmp_path):
    """An export folder as export-ops writes it (two op files), a stand-in adb and a phone."""
    out = tmp_path / "ops"
    (out / "ops").mkdir(parents=True)
    keys = ["conv:224x224:3-16:k3s2:hswish:b32", "gap:7x7:576-576:b32"]
    for i in range(len(keys)):
        (out / "ops" / f"op{i:05d}.tflite").write_bytes(b"not a model: the stand-in benchmark_model reads none")
    (out / "ops.txt").write_text("".join(f"ops/op{i:05d}.tflite {k}\n" for i, k in enumerate(keys)))
    (out / "time_ops.sh").write_text(benchmark_script("auto", 0.2))
    (out / "time_ops.sh").chmod(0o755)
    adb = tmp_path / "adb"
    adb.write_text(FAKE_ADB)
    adb.chmod(0o755)
    phone = tmp_path / "phone"
    phone.mkdir()
    env = {**os.environ, "ADB": str(adb), "PHONE": str(phone), "DEVICE_DIR": str(phone)}
    return out, phone, env, keys


def _run(out, env, *args, fresh=False, **extra):
    if fresh:  # time every op again: a kept log resumes (test_time_ops_sh_resumes_a_stopped_run)
        (out / "benchmark_log.txt").unlink(missing_ok=True)
    return subprocess.run(["sh", str(out / "time_ops.sh"), *args], capture_output=True, text=True,
                          env={**env, **extra}, timeout=60)


def test_time_ops_sh_stops_in_one_line_without_a_phone_or_benchmark_model(folder):
    out, phone, env, _ = folder
    r = _run(out, env, STATE="unknown")
    assert r.returncode == 2 and r.stderr.startswith("error: no phone on adb") and "--local" in r.stderr
    assert not (out / "benchmark_log.txt").exists()
    r = _run(out, env)  # a phone, but no benchmark_model on it nor beside the script
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "error: benchmark_model is neither on the phone" in r.stderr and "android_aarch64_benchmark_model" in r.stderr
    assert not (out / "benchmark_log.txt").exists()  # not one "benchmark_model failed" per op
    r = _run(out, env, "--lokal")
    assert r.returncode == 2 and "usage" in r.stderr


def test_time_ops_sh_pins_to_the_prime_cores_and_cools_down(folder, tmp_path):
    out, phone, env, keys = folder
    _fake_benchmark_model(out / "benchmark_model")  # beside the script: pushed to the phone
    r = _run(out, env)
    assert r.returncode == 0, r.stderr
    # a fresh log: nothing timed yet is 0, not an empty string ([ "" -gt 0 ] in dash / bash)
    assert "Illegal number" not in r.stderr and "integer expression expected" not in r.stderr
    assert "pinning to cores c0: the prime cores of gs201" in r.stdout  # Pixel 7: cores 6-7, the X1 pair
    calls = (phone / "adb_calls.txt").read_text().splitlines()
    runs = [c for c in calls if "--graph=" in c]
    assert len(runs) == 2 and all(c.startswith(f"shell taskset c0 {phone}/benchmark_model --graph=") for c in runs)
    assert all("--num_threads=1" in c and "--use_xnnpack=true" in c for c in runs)
    log = (out / "benchmark_log.txt").read_text()
    assert log.count("Inference (avg)") == 2 and "== hwnas thermal status before: 0" in log
    assert "COOL_DOWN=0.2 s" in r.stdout  # the cool-down set at export
    # the clocks disagree with the table (a SoC revision, a table error): the phone's clocks win
    r = _run(out, env, fresh=True, CLOCKS="0:1803000 1:1803000 2:1803000 3:1803000 4:2350000 5:2350000 6:2850000 7:3000000")
    assert "pinning to cores 80: the cores with the highest maximum clock (this script's table says c0" in r.stdout
    # a SoC not in the table: the fastest cores, read on the phone
    r = _run(out, env, fresh=True, SOC="somechip", CLOCKS="0:2000000 1:2000000 2:3100000 3:3100000")
    assert r.returncode == 0 and "pinning to cores c: the cores with the highest maximum clock" in r.stdout
    # the user's mask wins over both
    r = _run(out, env, fresh=True, CPU_MASK="40")
    assert "pinning to cores 40: CPU_MASK" in r.stdout
    assert sum(c.startswith("shell taskset 40 ") for c in (phone / "adb_calls.txt").read_text().splitlines()) == 2
    # a phone that throttled during the run is told
    r = _run(out, env, fresh=True, THERMAL="2")
    assert r.returncode == 0 and "warning: the phone's thermal status is 2" in r.stderr
    # the log becomes a profile: runtime and source say what timed it
    r = runner.invoke(app, ["profile", "import", "--name", "pixel7-mine", "--results", str(out / "benchmark_log.txt"),
                            "--out", str(tmp_path / "profiles")])
    assert r.exit_code == 0, r.output
    prof = load_device(tmp_path / "profiles" / "pixel7-mine.yaml")
    assert prof.runtime == "tflite-xnnpack" and "time_ops.sh" in prof.source and "time_ops.py" not in prof.source
    assert prof.table[keys[0]] == pytest.approx(0.8124)


def test_time_ops_sh_resumes_a_stopped_run(folder, tmp_path):
    """Ops the log already holds a timing for are not timed again; a failed one is, and the
    import takes the later timing without a warning."""
    out, phone, env, keys = folder
    _fake_benchmark_model(out / "benchmark_model")
    log = out / "benchmark_log.txt"
    log.write_text(f"== hwnas op {keys[0]}\nbenchmark_model failed\n== hwnas op {keys[1]}\n"
                   + BENCHMARK_RUN.format(graph="b"))
    r = _run(out, env)
    assert r.returncode == 0, r.stderr
    assert "1 of 2 ops already timed" in r.stdout and "timing 1 op models" in r.stdout
    runs = [c for c in (phone / "adb_calls.txt").read_text().splitlines() if "--graph=" in c]
    assert len(runs) == 1 and runs[0].endswith(" --warmup_runs=5 --num_runs=50") and "op00000.tflite" in runs[0]
    r = _run(out, env)  # all timed: nothing to do
    assert "2 of 2 ops already timed" in r.stdout and "timing 0 op models" in r.stdout
    assert len([c for c in (phone / "adb_calls.txt").read_text().splitlines() if "--graph=" in c]) == 1
    assert not (out / ".timed_ops").exists()
    r = runner.invoke(app, ["profile", "import", "--name", "resumed", "--results", str(log), "--out", str(tmp_path / "p")])
    assert r.exit_code == 0 and "warning" not in r.output and "skipped" not in r.output, r.output
    assert set(load_device(tmp_path / "p" / "resumed.yaml").table) == set(keys)


def test_the_soc_table_is_in_the_script_and_the_pixel7_header_line_is_right():
    text = benchmark_script()
    assert "gs201      Google Tensor G2 (Pixel 7, 7 Pro, 7a): 0-3 Cortex-A55, 4-5 Cortex-A78, 6-7 Cortex-X1 -> c0" in text
    for plat, (_, _, mask) in SOC_PRIME_CORES.items():
        assert f"{plat}) table={mask} ;;" in text
        assert int(mask, 16) & 0xF0 != 0xF0  # f0 would mix core types on every one of them
    assert "CPU_MASK=${CPU_MASK:-auto}" in text and "COOL_DOWN=${COOL_DOWN:-1}" in text
    assert "CPU_MASK=${CPU_MASK:-c0}" in benchmark_script("0xC0", 3)
    assert "COOL_DOWN=${COOL_DOWN:-3}" in benchmark_script("c0", 3)
    assert "garbled" not in text and "80 = the Pixel 7" not in text
    assert subprocess.run(["sh", "-n"], input=text, text=True).returncode == 0


def test_export_ops_rejects_a_bad_cpu_mask_before_any_work(tmp_path):
    for bad in ("zz", "0", "f0 c0"):
        r = runner.invoke(app, ["profile", "export-ops", "--space", "mobilenetv3", "--out", str(tmp_path / "x"),
                                "--format", "tflite", "--cpu-mask", bad])
        assert r.exit_code == 2 and "--cpu-mask" in r.output, r.output
    assert not (tmp_path / "x").exists()


def test_import_skips_an_op_without_a_timing_with_a_warning(tmp_path):
    keys = ["conv:224x224:3-16:k3s2:hswish:b32", "gap:7x7:576-576:b32", "linear:1x1:576-1000:b32"]
    log = tmp_path / "benchmark_log.txt"
    log.write_text(f"== hwnas thermal status before: 0\n== hwnas op {keys[0]}\n"
                   + BENCHMARK_RUN.format(graph="a") + f"== hwnas op {keys[1]}\n"
                   "ERROR: Could not open '/data/local/tmp/hwnas_ops/op00001.tflite'.\nbenchmark_model failed\n"
                   f"== hwnas op {keys[2]}\n" + BENCHMARK_RUN.replace("812.4", "95").format(graph="c"))
    r = runner.invoke(app, ["profile", "import", "--name", "p", "--results", str(log), "--out", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    line = log.read_text().splitlines().index(f"== hwnas op {keys[1]}") + 1
    assert re.search(rf"warning: .*benchmark_log.txt: line {line}: no 'Inference \(avg\)' timing for op "
                     r"gap:7x7:576-576:b32 \(benchmark_model failed\): skipped", r.output.replace("\n", "")), r.output
    assert "1 ops skipped" in r.output and "leave-one-out over the 2 timed ops" in r.output
    prof = load_device(tmp_path / "p" / "p.yaml")
    assert set(prof.table) == {keys[0], keys[2]} and "1 ops without a timing skipped" in prof.source
    assert prof.runtime == "tflite-xnnpack"  # a benchmark_model log, no --runtime: LiteRT, not onnxruntime
    # nothing timed at all: one line, not a profile
    log.write_text(f"== hwnas op {keys[0]}\nbenchmark_model failed\n")
    r = runner.invoke(app, ["profile", "import", "--name", "q", "--results", str(log), "--out", str(tmp_path / "p")])
    assert r.exit_code == 2 and "none of its 1 ops" in r.output and not (tmp_path / "p" / "q.yaml").exists()


def _time_tflite(host_tool: Path, path: Path) -> float:
    """One whole network timed by the stand-in, read back from benchmark_model's output."""
    proc = subprocess.run([sys.executable, str(host_tool), f"--graph={path}", "--num_threads=1", "--warmup_runs=2",
                           "--num_runs=10", "--min_secs=0", "--warmup_min_secs=0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(re.search(r"Inference \(avg\): ([0-9.e+-]+)", proc.stdout).group(1)) / 1e3


@pytest.mark.slow
@pytest.mark.skipif(not __import__("nas.export.litert").export.litert.available(),
                    reason='needs pip install "hwnas[litert]"')
def test_the_onboarding_loop_runs_for_real_on_this_computer(tmp_path, monkeypatch):
    """export-ops --format tflite -> time_ops.sh --local (everything but the phone is the real
    path) -> nas profile import -> prices of whole .tflite networks. The loop, not the
    accuracy: the machine is shared, so the bound on the prediction is loose."""
    from nas.export.litert import export_tflite
    from nas.models import build_model

    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ops"
    r = runner.invoke(app, ["profile", "export-ops", "--space", "mobilenetv3", "--out", str(out), "--samples", "1",
                            "--bits", "32", "--format", "tflite", "--cool-down", "0"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("18 op models: the ops of 1 sampled candidate per space (mobilenetv3), at 32 bits; "
                               "about 31 s to export"), r.output
    assert "of phone time" in r.output and "exporting op models: 18/18 ops in" in r.output  # off a terminal too
    proc = subprocess.run(["sh", str(out / "time_ops.sh"), "--local"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable, "MIN_SECS": "0", "RUNS": "10", "WARMUP": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "18/18" in proc.stdout
    log = (out / "benchmark_log.txt").read_text()
    assert log.count("Inference timings in us:") == 18 and "benchmark_model failed" not in log
    r = runner.invoke(app, ["profile", "import", "--name", "this-host-litert", "--results", str(out / "benchmark_log.txt"),
                            "--out", str(tmp_path / "profiles")])
    assert r.exit_code == 0, r.output
    prof = load_device(tmp_path / "profiles" / "this-host-litert.yaml")
    assert len(prof.table) == 18 and prof.runtime == "tflite-xnnpack" and prof.provenance == "measured"
    space = nas.load_space("mobilenetv3")
    timed = space.sample_many(1, 0)[0].replace_bits(32)  # the candidate whose ops were exported
    fresh = [c.replace_bits(32) for c in space.sample_many(2, 11)]
    assert prof.provenance_for(timed) == "measured"
    for c in fresh:
        n, m = prof.coverage(c)
        assert prof.provenance_for(c) == ("measured" if n == m else f"measured ({n} of {m} ops) + estimated ({m - n})")
    ratios = []
    # whole networks timed: the one priced from its measured ops and a fresh one the estimator prices
    # mostly (converting a whole network to .tflite costs about as much as converting nine op models)
    for i, c in enumerate([timed, fresh[0]]):
        path = tmp_path / f"net{i}.tflite"
        export_tflite(build_model(c, num_classes=1000).eval(), path, [1, 3, c.resolution, c.resolution])
        measured = _time_tflite(out / "benchmark_model_host.py", path)
        predicted = prof.latency_ms(c)
        assert np.isfinite(predicted) and predicted > 0
        ratios.append(predicted / measured)
    # milliseconds on both sides: a unit slip (microseconds read as ms, or the reverse) would be 1000x
    # off. The bound is that loose on purpose: on a shared machine one average of 10 runs moves by
    # several times, and the estimator prices most fresh ops (BENCHMARKS.md measures the accuracy)
    assert all(0.01 < q < 100 for q in ratios), ratios


def test_progress_off_a_terminal_says_how_far_and_how_long_at_intervals(capsys):
    from nas.cli._app import _plain_progress

    update = _plain_progress("exporting op models", "ops", every_s=0.0)
    for i in range(1, 5):
        update(i, 4)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "exporting op models: 1/4 ops ..."
    assert [ln.split(",")[0] for ln in lines[1:3]] == ["exporting op models: 2/4 ops", "exporting op models: 3/4 ops"]
    assert all(re.search(r", about \d+ s left$", ln) for ln in lines[1:3])
    assert re.fullmatch(r"exporting op models: 4/4 ops in \d+ s", lines[3])
    quiet = _plain_progress("x", "ops")  # without every_s: the first and the last line only
    for i in range(1, 5):
        quiet(i, 4)
    assert len(capsys.readouterr().err.splitlines()) == 2
