import json

import numpy as np
import onnxruntime as ort
import optuna
import pytest
import torch
from conftest import TINY_PROXY

import nas
from nas.distill import (
    DistillConfig,
    DistillError,
    distill_run,
    load_checkpoint,
)
from nas.search import SearchConfig, run_search

optuna.logging.set_verbosity(optuna.logging.WARNING)
FAST = dict(epochs=0.3, teacher_epochs=0.1, kd=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, ray_session):
    out = tmp_path_factory.mktemp("runs")
    res = run_search(SearchConfig(trials=3, workers=2, out=str(out), name="r", references=0, proxy=dict(TINY_PROXY)))
    return res.run_dir


@pytest.mark.slow
def test_distill_exports_a_checked_winner_with_its_card(run_dir):
    card = distill_run(run_dir, DistillConfig(**FAST))
    win = run_dir / "winner"
    for f in ("model.pt", "model.onnx", "model.int8.onnx", "card.json", "card.md"):
        assert (win / f).is_file(), f
    assert json.loads((win / "card.json").read_text()) == json.loads(json.dumps(card))
    for k in ("candidate", "device", "provenance", "predicted_latency_ms", "latency_budget_ms", "macs", "params",
              "bytes", "proxy_accuracy", "test_accuracy_fp32", "test_accuracy_int8", "teacher_accuracy", "dataset",
              "training_seconds", "host_latency_ms"):
        assert card[k] is not None, k
    assert card["provenance"] == "estimated" and "estimated" in (win / "card.md").read_text()
    assert card["predicted_latency_ms"] <= card["latency_budget_ms"]
    h = card["host_latency_ms"]
    assert h["measured_fp32"] > 0 and h["measured_int8"] > 0 and h["predicted_fp32"] > 0
    assert 0 <= card["test_accuracy_int8"] <= 1 and 0 <= card["test_accuracy_fp32"] <= 1
    # the checkpoint loads with weights_only=True and the fp32 ONNX file computes the same function
    blob = torch.load(win / "model.pt", weights_only=True)
    assert blob["key"] == card["candidate"]
    model, _ = load_checkpoint(win / "model.pt")
    x = np.random.default_rng(0).standard_normal(card["input"]["shape"]).astype(np.float32)
    got = ort.InferenceSession(str(win / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.allclose(got, want, atol=1e-4)
    i8 = ort.InferenceSession(str(win / "model.int8.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert i8.shape == want.shape and np.isfinite(i8).all()
    # a teacher checkpoint can be passed; the cached teacher is one
    teacher = next((run_dir / "teachers").glob("teacher-*.pt"))
    card2 = distill_run(run_dir, DistillConfig(**FAST, teacher=str(teacher), measure_host=False, out="winner2"))
    assert card2["teacher_source"] == str(teacher) and card2["teacher"] == card["teacher"]


@pytest.mark.slow
def test_parent_teacher_is_the_winner_unpruned_and_float(run_dir):

    card = distill_run(run_dir, DistillConfig(**{**FAST, "teacher_epochs": None}, teacher_net="parent",
                                              measure_host=False, out="winner-parent"))
    want = nas.parse_candidate(card["candidate"]).unpruned().replace_bits(32).key
    assert card["teacher"] == want and "unpruned" in card["teacher_source"]
    assert card["distillation"]["teacher_net"] == "parent"
    assert card["distillation"]["teacher_epochs"] == 2 * FAST["epochs"]  # default: twice the student's
    cached = list((run_dir / "teachers").glob("teacher-parent-*.pt"))
    assert len(cached) == 1 and load_checkpoint(cached[0])[1]["key"] == want
    with pytest.raises(DistillError, match="unknown teacher"):
        distill_run(run_dir, DistillConfig(**FAST, teacher_net="biggest"))


@pytest.mark.slow
def test_bad_teachers_are_clear_errors(run_dir, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DistillError, match="not a readable checkpoint"):
        distill_run(run_dir, DistillConfig(**FAST, teacher=str(bad), measure_host=False, out="w3"))
    with pytest.raises(DistillError, match="not found"):
        distill_run(run_dir, DistillConfig(**FAST, teacher=str(tmp_path / "missing.pt"), measure_host=False))
    evil = tmp_path / "evil.pt"

    class Boom:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"key": Boom()}, evil)
    with pytest.raises(DistillError, match="not a readable checkpoint"):  # weights_only refuses code
        load_checkpoint(evil)
