"""Onboarding paths, exercised with real timings taken on this host."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import nas
from nas.cli import app
from nas.latency import load_device, measure_candidate
from nas.space import parse_candidate

runner = CliRunner()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))


def small(cand):
    """Candidates at a small input keep op models and timings fast."""
    return cand.replace(resolution=64)


@pytest.mark.slow
def test_export_time_import(tmp_path):
    out = tmp_path / "export"
    r = runner.invoke(app, ["profile", "export-ops", "--space", "shufflenetv2", "--out", str(out),
                            "--samples", "1", "--bits", "32"])
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["ops"]) >= 10
    # the standalone script, as a user would run it on the device
    proc = subprocess.run([sys.executable, str(out / "time_ops.py"), "--runs", "5"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {e["key"] for e in manifest["ops"]}
    r = runner.invoke(app, ["profile", "import", "--name", "myboard", "--results",
                            str(out / "results.json"), "--out", str(tmp_path / "profiles")])
    assert r.exit_code == 0, r.output
    prof = load_device(tmp_path / "profiles" / "myboard.yaml")
    assert prof.provenance == "measured" and len(prof.table) == len(results)
    before = (tmp_path / "profiles" / "myboard.yaml").read_text()
    again = ["profile", "import", "--name", "myboard", "--results", str(out / "results.json"),
             "--out", str(tmp_path / "profiles")]
    r = runner.invoke(app, again)
    assert r.exit_code == 2 and "--force" in r.output
    assert (tmp_path / "profiles" / "myboard.yaml").read_text() == before  # nothing lost
    assert runner.invoke(app, again + ["--force"]).exit_code == 0
    space = nas.load_space("shufflenetv2")
    import random

    cand = space.sample(random.Random(0)).replace_bits(32)  # the sampled candidate: all ops in the table
    rows = prof.breakdown(cand)
    assert all(r.source == "table" for r in rows)
    other = space.sample(random.Random(99)).replace_bits(32)
    assert prof.latency_ms(other) > 0  # ops not exported come from the fitted estimator


def test_fit_from_whole_network_timings(tmp_path):
    import random

    space = nas.load_space("mobilenetv3")
    rng = random.Random(3)
    cands = [space.sample(rng).replace_bits(32) for _ in range(8)]
    csv_path = tmp_path / "m.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "ms"])
        for c in cands:
            w.writerow([c.key, measure_candidate(c, False, tmp_path)])
    r = runner.invoke(app, ["profile", "fit", "--name", "fitted", "--measurements", str(csv_path),
                            "--prior", "pixel7", "--out", str(tmp_path / "profiles")])
    assert r.exit_code == 0, r.output
    assert "cross-validation" in r.output
    prof = load_device(tmp_path / "profiles" / "fitted.yaml")
    assert prof.provenance == "fitted" and prof.validation["entries"] == 8
    assert "fitted from 8 whole-network timings" in prof.source and "prior pixel7" in prof.source
    assert "cross-validation over 8" in prof.validation_text()
    assert all(prof.latency_ms(c) > 0 for c in cands)


def test_fit_rejects_bad_csv(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("key,latency\nx,1\n")
    r = runner.invoke(app, ["profile", "fit", "--name", "x", "--measurements", str(p)])
    assert r.exit_code == 2 and "'key' and 'ms'" in r.output
    p.write_text("key,ms\nmobilenetv2:r224:w1:k3e1,abc\n")
    r = runner.invoke(app, ["profile", "fit", "--name", "x", "--measurements", str(p)])
    assert r.exit_code == 2 and "line 2" in r.output
    key = nas.load_space("mobilenetv2").reference("mobilenet_v2_1.0_224").key
    p.write_text(f"key,ms\n{key},3.5\n")  # not quoted: the key's commas split it into fields
    r = runner.invoke(app, ["profile", "fit", "--name", "x", "--measurements", str(p)])
    assert r.exit_code == 2 and "line 2" in r.output and "quote the key" in r.output, r.output
    r = runner.invoke(app, ["profile", "fit", "--name", "x", "--measurements", str(tmp_path / "nope.csv")])
    assert r.exit_code == 2 and "not found" in r.output


HELP = Path(__file__).resolve().parents[2] / "shared" / "device_data" / "help_fbnet_cifar100_pixel2_a50.csv"


@pytest.mark.skipif(not HELP.is_file(), reason="needs ../shared/device_data")
def test_fit_learns_from_real_phone_timings(tmp_path):
    """Fitted on 100 of the HELP networks (Galaxy A50), it predicts 300 others as the search
    prices them (100 classes) better than a straight line on MACs fitted to the same 100."""
    rows = list(csv.DictReader(HELP.open(newline="")))
    train, test = rows[:100], rows[100:400]
    with (tmp_path / "a50.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "ms"])  # no classes column: --classes gives it
        w.writerows([[r["key"], r["samsung_a50_ms"]] for r in train])
    r = runner.invoke(app, ["profile", "fit", "--name", "a50", "--measurements", str(tmp_path / "a50.csv"),
                            "--classes", "100", "--runtime", "tflite", "--out", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    prof = load_device(tmp_path / "p" / "a50.yaml")
    assert prof.provenance == "fitted" and "on tflite" in prof.source and "100 classes" in prof.source
    y = np.array([float(r["samsung_a50_ms"]) for r in test])
    cands = [parse_candidate(r["key"]) for r in test]
    pred = np.array([prof.latency_ms(c, num_classes=100) for c in cands])
    err = np.abs(pred / y - 1)
    # the baseline: ms = a * MACs + b on the same 100 networks
    def macs(row):
        return sum(op.macs for op in parse_candidate(row["key"]).ops(num_classes=100)) / 1e6
    A = np.array([[macs(r), 1.0] for r in train])
    yt = np.array([float(r["samsung_a50_ms"]) for r in train])
    coef = np.linalg.lstsq(A / yt[:, None], np.ones(len(yt)), rcond=None)[0]
    base = np.abs(np.array([[macs(r), 1.0] for r in test]) @ coef / y - 1)
    assert err.mean() < base.mean() and err.mean() < 0.07, (err.mean(), base.mean())
    # fitted for 100 classes: priced as 1000 it would be another network, and slower
    assert prof.latency_ms(cands[0], num_classes=1000) > prof.latency_ms(cands[0], num_classes=100)


def test_fit_rejects_bad_classes_and_foreign_keys(tmp_path):
    key = nas.load_space("mobilenetv2").reference("mobilenet_v2_1.0_224").key
    p = tmp_path / "m.csv"
    p.write_text(f'key,ms\n"{key}",3.5\n"{key}",3.6\n"{key}",3.7\n')
    r = runner.invoke(app, ["profile", "fit", "--name", "x", "--measurements", str(p), "--classes", "1"])
    assert r.exit_code == 2 and "--classes must be at least 2" in r.output
    p.write_text(f'key,ms,classes\n"{key}",3.5,10\n"{key}",3.6,1\n')
    r = runner.invoke(app, ["profile", "fit", "--name", "x", "--measurements", str(p)])
    assert r.exit_code == 2 and "line 3: classes must be at least 2" in r.output
    p.write_text(f'key,ms\n"{key}",3.5\n"nosuchspace:r224:w1:k3e1",3.6\n')
    r = runner.invoke(app, ["profile", "fit", "--name", "x", "--measurements", str(p)])
    assert r.exit_code == 2 and "line 3" in r.output and "Traceback" not in r.output, r.output
    r = runner.invoke(app, ["profile", "fit", "--name", "x", "--measurements", str(p), "--column", "pixel2_ms"])
    assert r.exit_code == 2 and "'pixel2_ms'" in r.output


def test_build_refuses_non_host_devices():
    r = runner.invoke(app, ["profile", "build", "--device", "pixel7"])
    assert r.exit_code == 2 and "only the host profile" in r.output


BENCHMARK_RUN = """STARTING!
Num threads: [1]
Graph: [/data/local/tmp/hwnas_ops/{file}]
Use xnnpack: [1]
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
The input model file size (MB): 0.002
Initialized session in 2.041ms.
Running benchmark for at least 5 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=1234 first=1021 curr=803 min=790 max=1523 avg=812.4 std=40

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=1240 first=810 curr=805 min=790 max=1100 avg={avg} std=21

Inference timings in us: Init: 2041, First inference: 1021, Warmup (avg): 812.4, Inference (avg): {avg}
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Memory footprint delta from the start of the tool (MB): init=3.1 overall=4.2
"""


@pytest.mark.slow
@pytest.mark.skipif(not __import__("nas.export._litert").export._litert.available(), reason='needs pip install "hwnas[litert]"')
def test_tflite_onboarding_without_python_on_the_phone(tmp_path, monkeypatch):
    from ai_edge_litert.interpreter import Interpreter

    from nas.latency import _onboard as onboard

    ops = onboard._ops_for_export(["shufflenetv2"], 1, 0, [32, 8])[:4]  # four op models keep it quick
    monkeypatch.setattr(onboard, "_ops_for_export", lambda *a: ops)
    out = tmp_path / "ops"
    r = runner.invoke(app, ["profile", "export-ops", "--space", "shufflenetv2", "--out", str(out), "--samples", "1",
                            "--format", "tflite"])
    assert r.exit_code == 0, r.output
    assert "time_ops.sh" in r.output and "benchmark_log.txt" in r.output
    lines = (out / "ops.txt").read_text().splitlines()
    assert [ln.split(" ")[1] for ln in lines] == [op.key for op in ops]
    for ln, op in zip(lines, ops):
        it = Interpreter(model_path=str(out / ln.split(" ")[0]), num_threads=1)
        it.allocate_tensors()
        inp = it.get_input_details()[0]
        assert list(inp["shape"]) == [1, op.cin, op.h, op.w]
        if op.kind not in ("maxpool", "gap"):  # weightless pooling alone is left float by PT2E
            assert (inp["dtype"] == np.int8) == (op.bits == 8)  # int8 blocks run as int8 models
        it.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
        it.invoke()
    assert subprocess.run(["sh", "-n", str(out / "time_ops.sh")]).returncode == 0  # the script parses
    # benchmark_model's output, as time_ops.sh collects it, becomes a measured profile
    log = tmp_path / "benchmark_log.txt"
    log.write_text("".join(f"== hwnas op {ln.split(' ')[1]}\n" + BENCHMARK_RUN.format(file=ln.split(' ')[0], avg=800 + 10 * i)
                           for i, ln in enumerate(lines)))
    r = runner.invoke(app, ["profile", "import", "--name", "phone", "--results", str(log), "--runtime",
                            "tflite-xnnpack", "--out", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    prof = load_device(tmp_path / "p" / "phone.yaml")
    assert prof.table[ops[1].key] == pytest.approx(0.81) and prof.runtime == "tflite-xnnpack"
    # a run that printed no timing names the file and the op's line
    log.write_text(f"== hwnas op {ops[0].key}\nbenchmark_model failed\n== hwnas op {ops[1].key}\n"
                   + BENCHMARK_RUN.format(file="x", avg=900))
    r = runner.invoke(app, ["profile", "import", "--name", "phone2", "--results", str(log), "--out", str(tmp_path / "p")])
    assert r.exit_code == 2 and "benchmark_log.txt: line 1" in r.output and "Inference (avg)" in r.output, r.output
