"""ExecuTorch (.pte) export, the executorch extra: XNNPACK-delegated fp32 and int8 programs that
run in ExecuTorch's runtime with torch's outputs; the winner's card records their accuracy; without
the extra, one clear error. The tests that need executorch skip cleanly where it is not installed."""

import json
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import TINY_PROXY, small_builtin
from test_card import old_card

import nas
from nas.errors import ExportError, NasError
from nas.export import executorch
from nas.models import build_model
from nas.winner import PteSection, WinnerCard, parse_formats, pte_section

needs = pytest.mark.skipif(not executorch.available(), reason='needs pip install "hwnas[executorch]"')


def _lite(side: int = 32, classes: int = 10) -> torch.nn.Module:
    """A float EfficientNet-Lite candidate, trained for no step but with moved batch-norm statistics
    (the int8 scales then have something to calibrate)."""
    torch.manual_seed(0)
    cand = nas.load_space("efficientnet_lite").sample(random.Random(3)).replace_bits(32)
    model = build_model(cand, classes, 3, resolution=side)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, side, side))
    return model.eval()


def _images(n: int, side: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, side, side)).astype(np.float32)


def test_pte_is_one_of_the_export_formats():
    assert parse_formats("onnx,pte") == ("onnx", "pte")
    with pytest.raises(NasError, match="choose from onnx, tflite, pte"):
        parse_formats("coreml")


@pytest.mark.skipif(executorch.available(), reason="the executorch extra is installed")
def test_without_the_extra_export_says_how_to_get_it(tmp_path):
    with pytest.raises(ExportError, match=r'ExecuTorch export needs the executorch extra: pip install "hwnas\[executorch\]"'):
        executorch.export_pte(torch.nn.Identity(), tmp_path / "model.pte", [1, 3, 8, 8])
    x = _images(2, 8)
    sec = pte_section(torch.nn.Identity(), tmp_path, [1, 3, 8, 8], x, lambda: [(x, np.zeros(2, np.int64))])
    assert sec.written is False and sec.note == executorch.INSTALL_HINT
    assert list(tmp_path.iterdir()) == []


def test_the_card_keeps_its_executorch_section():
    """card.json round-trips the section; card.md lists the files with their accuracy and latency;
    a card written before the section existed loads with none."""
    card = WinnerCard.from_json(json.dumps(old_card()))
    assert card.pte == PteSection(written=False)
    pte = PteSection(written=True, files={"model.pte": "fp32", "model.int8.pte": "int8"}, test_accuracy_fp32=0.81,
                     test_accuracy_int8=0.8, host_latency_fp32_ms=2.5, host_latency_int8_ms=1.25, note="measured",
                     executorch_version="1.5.1")
    card = replace(card, pte=pte, files={**card.files, **pte.files})
    again = WinnerCard.from_json(card.to_json())
    assert again == card and again.pte.test_accuracy_int8 == 0.8
    md = card.markdown()
    assert ("- ExecuTorch (`model.pte`, `model.int8.pte`) fp32: test accuracy 81.00%, 2.500 ms; int8: test accuracy "
            "80.00%, 1.250 ms (measured).") in md
    failed = replace(card, pte=PteSection(written=False, errors=("model.pte: ExecuTorch export failed at x",)))
    assert "- ExecuTorch export failed: model.pte: ExecuTorch export failed at x" in failed.markdown()


@needs
def test_fp32_pte_is_delegated_and_gives_torchs_outputs(tmp_path):
    model = _lite()
    path = executorch.export_pte(model, tmp_path / "model.pte", [1, 3, 32, 32])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pte"]  # no temporary file left
    assert executorch.pte_delegated(path)
    method = executorch._method(path)
    for x in _images(3, seed=1):
        got = method.execute([torch.from_numpy(x[None])])[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x[None]))
        assert torch.allclose(torch.as_tensor(got), want, atol=1e-4), (got, want)
    assert executorch.pte_latency(path, [1, 3, 32, 32], min_runs=3, min_seconds=0) > 0


@needs
def test_int8_pte_is_quantized_delegated_and_close_to_torch(tmp_path):
    model = _lite()
    calib = _images(16, seed=2)
    f32 = executorch.export_pte(model, tmp_path / "model.pte", [1, 3, 32, 32])
    i8 = executorch.export_pte(model, tmp_path / "model.int8.pte", [1, 3, 32, 32], int8=True, calibration=calib)
    assert executorch.pte_delegated(i8)
    assert i8.stat().st_size < 0.4 * f32.stat().st_size  # int8 weights: about a quarter of the float file
    x = _images(32, seed=3)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).argmax(1).numpy()
    # the int8 program agrees with torch's top-1 on most images (torch's own argmax as the labels)
    assert executorch.pte_accuracy(i8, x, want) >= 0.75
    assert executorch.pte_accuracy(f32, x, want) == 1.0
    # the same weights and images give the same file (issue 25's determinism, as for .tflite)
    again = executorch.export_pte(model, tmp_path / "again.int8.pte", [1, 3, 32, 32], int8=True, calibration=calib)
    assert again.read_bytes() == i8.read_bytes()
    with pytest.raises(ExportError, match="needs calibration images"):
        executorch.export_pte(model, tmp_path / "x.pte", [1, 3, 32, 32], int8=True)


class Unexportable(torch.nn.Module):
    """An operator outside the Core ATen opset that ExecuTorch lowers (a singular value decomposition)."""

    def forward(self, x):
        return torch.linalg.svdvals(x.flatten(2)).sum(-1)


@needs
def test_a_failed_export_is_one_error_and_leaves_nothing_behind(tmp_path):
    with pytest.raises(ExportError, match=r"bad.pte: ExecuTorch export failed at operator aten\._linalg_svd"):
        executorch.export_pte(Unexportable(), tmp_path / "bad.pte", [1, 3, 8, 8])
    assert list(tmp_path.iterdir()) == []
    x = _images(2, 8)
    sec = pte_section(Unexportable(), tmp_path, [1, 3, 8, 8], x, lambda: [(x, np.zeros(2, np.int64))])
    assert sec.written is False and len(sec.errors) == 2 and list(tmp_path.iterdir()) == []


@pytest.mark.slow
@needs
def test_nas_export_format_pte_writes_the_files_and_the_card(tmp_path, ray_session):
    """A tiny efficientnet_lite search, its winner distilled (ONNX only), then `nas export RUN
    --format pte`: model.pte and model.int8.pte run in ExecuTorch's runtime with the card's
    accuracies, beside the ONNX figures."""
    from typer.testing import CliRunner

    from nas.api import distill_run, run_search
    from nas.cli import app
    from nas.run import SearchConfig
    from nas.train import load_checkpoint
    from nas.winner import DistillConfig

    data = small_builtin(tmp_path / "small.npz", train_per_class=40, test_per_class=10)
    res = run_search(SearchConfig(trials=2, workers=1, out=str(tmp_path), name="r", references=0,
                                  space="efficientnet_lite", proxy=dict(TINY_PROXY), data=str(data),
                                  proxy_kind="train"))
    distill_run(res.run_dir, DistillConfig(epochs=0.2, own_side_epochs=0.1, tflite=False, measure_host=False))
    r = CliRunner().invoke(app, ["export", str(res.run_dir), "--format", "pte"])
    assert r.exit_code == 0 and "ExecuTorch:" in r.output, r.output
    win = res.run_dir / "winner"
    card = WinnerCard.load(win / "card.json")
    assert card.candidate.startswith("efficientnet_lite:")
    pte = card.pte
    assert pte.written and set(pte.files) == {"model.pte", "model.int8.pte"} <= set(card.files), pte
    assert pte.host_latency_fp32_ms > 0 and pte.host_latency_int8_ms > 0 and pte.executorch_version
    side = card.input.side
    x, y = nas.load_dataset(data).test_arrays(resolution=side)
    assert pte.test_accuracy_fp32 == pytest.approx(executorch.pte_accuracy(win / "model.pte", x, y))
    assert abs(pte.test_accuracy_fp32 - card.test_accuracy_fp32) < 0.02  # the same network as model.onnx
    assert abs(pte.test_accuracy_int8 - pte.test_accuracy_fp32) < 0.1
    model, _ = load_checkpoint(win / "model.pt")
    with torch.no_grad():
        want = model(torch.from_numpy(x[:1]))
    got = executorch._method(win / "model.pte").execute([torch.from_numpy(x[:1])])[0]
    assert torch.allclose(torch.as_tensor(got), want, atol=1e-4)
    md = (win / "card.md").read_text()
    assert "ExecuTorch (`model.pte`, `model.int8.pte`) fp32: test accuracy" in md
