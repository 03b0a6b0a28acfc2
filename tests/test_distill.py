import json

import numpy as np
import onnxruntime as ort
import optuna
import pytest
import torch
from conftest import TINY_PROXY, copy_run, png_folder

import nas
from nas.api import run_search
from nas.errors import DistillError
from nas.export import litert
from nas.run import SearchConfig, read_run_config
from nas.train import load_checkpoint
from nas.winner import DistillConfig, TfliteSection, WinnerCard, distill_run

optuna.logging.set_verbosity(optuna.logging.WARNING)
FAST = dict(epochs=0.3, teacher_epochs=0.1, kd=True, own_side_epochs=0.1, tflite=False)  # LiteRT: its own test


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small_run):
    """This module's copy of the shared 3-trial run (its tests distill into it, one after another)."""
    return copy_run(small_run[1], tmp_path_factory.mktemp("runs") / "r")


def _run_data(run_dir):
    return nas.load_dataset(read_run_config(run_dir)[1].data_path)  # the smaller built-in data the run searched on


@pytest.fixture(scope="module")
def distilled(run_dir):
    """The run's winner, distilled once (ONNX only) for the tests that read it."""
    return distill_run(run_dir, DistillConfig(**FAST))


@pytest.mark.slow
def test_distill_exports_a_checked_winner_with_its_card(run_dir, distilled):
    card = json.loads(distilled.to_json())
    win = run_dir / "winner"
    for f in ("model.pt", "model.onnx", "model.int8.onnx", "card.json", "card.md"):
        assert (win / f).is_file(), f
    assert json.loads((win / "card.json").read_text()) == card
    assert WinnerCard.load(win / "card.json") == distilled  # card.json round-trips to the record
    for k in ("candidate", "device", "provenance", "predicted_latency_ms", "latency_budget_ms", "macs", "params",
              "bytes", "proxy_accuracy", "test_accuracy_fp32", "test_accuracy_int8", "teacher_accuracy", "dataset",
              "training_seconds", "host_latency_ms"):
        assert card[k] is not None, k
    assert card["provenance"] == "estimated" and "estimated" in (win / "card.md").read_text()
    assert "expected error ±" in card["device_summary"]  # pixel7's error bar (issue 28) reaches the card
    assert card["predicted_latency_ms"] <= card["latency_budget_ms"]
    mem = card["memory"]  # peak at batch 1: the float file holds more than the quantized network
    assert card["bytes"] < mem["at_bit_widths"] < mem["fp32_file"]
    assert f"Peak memory at batch 1: {mem['at_bit_widths'] / 1024:.0f} KB" in (win / "card.md").read_text()
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
    _assert_the_shipped_network_is_the_priced_one(win / "model.onnx", card)
    # a teacher checkpoint can be passed; the cached teacher is one
    teacher = next((run_dir / "teachers").glob("teacher-*.pt"))
    card2 = distill_run(run_dir, DistillConfig(**FAST, teacher=str(teacher), measure_host=False, out="winner2"))
    assert card2.teacher_source == str(teacher) and card2.teacher == card["teacher"]
    # winners never overwrite each other: the same folder again needs --force
    with pytest.raises(DistillError, match=r"already holds the winner of trial .* --force"):
        distill_run(run_dir, DistillConfig(**FAST, measure_host=False))
    assert json.loads((win / "card.json").read_text()) == card  # untouched


def _card_snippets(md: str) -> dict[str, str]:
    """The card's Python blocks as written in card.md, by the file each one runs."""
    blocks = [b.split("\n```", 1)[0] for b in md.split("```python\n")[1:]]
    return {("model.tflite" if "model.tflite" in b else "model.onnx"): b for b in blocks}


def _tflite_predictions(path, x) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for k in range(len(x)):
        it.set_tensor(i["index"], np.asarray(x[k:k + 1], np.float32))
        it.invoke()
        out.append(int(it.get_tensor(o["index"]).argmax()))
    return np.array(out)


def _assert_the_cards_snippets_reproduce_the_exported_files(win, card, ds, tmp_path):
    """Every Python block of card.md, run as written in the winner folder on every image of the
    test split (saved as PNG at the model's input side: the pixels the test split feeds it), prints
    the class the exported file predicts for that image."""
    import subprocess
    import sys

    from PIL import Image

    snippets = _card_snippets((win / "card.md").read_text())
    assert set(snippets) == {"model.onnx", "model.tflite"}, list(snippets)
    side, ch = card.input.side, card.input.channels
    x, _ = ds.test_arrays(resolution=side)
    mean, std = np.asarray(card.input.mean, np.float32), np.asarray(card.input.std, np.float32)
    paths = []
    for k in range(len(x)):  # the test split's pixels back to uint8 (exact: they were uint8 before)
        img = np.rint((np.asarray(x[k]).transpose(1, 2, 0) * std + mean) * 255).clip(0, 255).astype(np.uint8)
        paths.append(tmp_path / f"test-{k}.png")
        Image.fromarray(img[..., 0] if ch == 1 else img, "L" if ch == 1 else "RGB").save(paths[-1])
    sess = ort.InferenceSession(str(win / "model.onnx"), providers=["CPUExecutionProvider"])
    want = {"model.onnx": np.concatenate([sess.run(None, {"input": np.asarray(x[i:i + 50])})[0].argmax(1)
                                          for i in range(0, len(x), 50)]),
            "model.tflite": _tflite_predictions(win / "model.tflite", x)}
    for name, code in snippets.items():
        # the snippet's own image(path) gives exactly the test split's input (all channels, the side,
        # the normalisation): a grayscale reading of a colour image would broadcast and still run
        ns: dict = {}
        exec(compile(code.split("\n\n\nimport onnxruntime")[0].split("\n\n\nfrom ai_edge_litert")[0], name, "exec"), ns)
        for k, path in enumerate(paths):
            got = ns["image"](path)
            ref = np.asarray(x[k:k + 1])
            assert got.shape == (ref.shape if card.tflite.fp32_input_layout == "NCHW" or name == "model.onnx"
                                 else ref.transpose(0, 2, 3, 1).shape), (name, got.shape)
            if got.shape != ref.shape:
                got = got.transpose(0, 3, 1, 2)
            assert np.allclose(got, ref, atol=1e-5), (name, k)
        script = tmp_path / f"classify-{name}.py"
        script.write_text(code)
        p = subprocess.run([sys.executable, str(script), *map(str, paths)], cwd=win, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]
        got = p.stdout.split()
        assert got == [card.class_names[i] for i in want[name]], name


@pytest.fixture(scope="module")
def knee(run_dir):
    """The knee's winner as `nas distill --pick knee` trains it, with its LiteRT files (the CLI's
    defaults: --threads 2, no KD), for the tests that read it: (the command's output, its card)."""
    from typer.testing import CliRunner

    from nas.cli import app

    r = CliRunner().invoke(app, ["distill", str(run_dir), "--pick", "knee", "--epochs", str(FAST["epochs"]),
                                 "--own-side-epochs", str(FAST["own_side_epochs"])])
    assert r.exit_code == 0, r.output
    return r.output, WinnerCard.load(run_dir / "winners" / "knee" / "card.json")


@pytest.mark.slow
@pytest.mark.skipif(not litert.available(), reason='needs pip install "hwnas[litert]"')
def test_the_cards_snippets_classify_grayscale_images_as_the_exported_files_do(run_dir, knee, tmp_path):
    output, card = knee
    assert f"winner: trial {card.trial} {card.candidate}" in output and "LiteRT: " in output
    assert f"(x{card.host_latency_ms.speedup_int8:.2f})" in output
    win = run_dir / card.folder
    assert card.folder == "winners/knee" and card.input.channels == 1 and card.tflite.fp32_input_layout == "NCHW"
    assert "Classes (output index: name): 0: " in (win / "card.md").read_text()
    ds = _run_data(run_dir)
    assert len(ds.y_test) == 300
    _assert_the_cards_snippets_reproduce_the_exported_files(win, card, ds, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not litert.available(), reason='needs pip install "hwnas[litert]"')
def test_a_colour_winners_card_classifies_as_its_files_and_export_refreshes_its_advice(tmp_path, ray_session):
    """Issue 25: on an RGB folder the snippet converted to grayscale (it read the channels from
    the batch dimension) and numpy broadcasting hid it. Issue 24: `nas export` rewrote the
    accuracies of a card but not the advice derived from them."""
    import html

    from typer.testing import CliRunner

    from nas.cli import app
    from nas.winner._card import ship_advice

    root = png_folder(tmp_path / "photos", n=20, size=24)
    # scored by a (tiny) supernet: colour data through the supernet, the inherited start and the card
    res = run_search(SearchConfig(trials=1, workers=1, out=str(tmp_path / "out"), name="rgb", references=0,
                                  proxy=dict(TINY_PROXY), data=str(root), distill=False, proxy_kind="supernet",
                                  supernet={"epochs": 1.0, "batch_size": 16, "random_members": 1}))
    card = distill_run(res.run_dir, DistillConfig(**{**FAST, "kd": False, "tflite": True}, measure_host=False))
    win = res.run_dir / "winner"
    md = (win / "card.md").read_text()
    assert card.trained_at.start.startswith("initialised from the supernet") and not card.distillation.kd
    assert card.input.channels == 3 and f"Input: [1, 3, {card.input.side}, {card.input.side}]" in md and "RGB (3)" in md
    ds = nas.load_dataset(root)
    assert len(ds.y_test) == 8
    _assert_the_cards_snippets_reproduce_the_exported_files(win, card, ds, tmp_path)
    # a card.json in the old format (derived text stored, bits as a string), its advice stale
    old = card.to_dict()
    old.update(test_accuracy_int8=card.test_accuracy_int8 - 0.5, ship="model.int8.onnx: stale advice",
               python_snippet="print('stale')", bits=",".join(f"{b}:{n}" for b, n in card.bits),
               latency_note="stale")
    old["input"].update(channels="RGB (3)", normalisation="x / 255, minus mean, divided by std, per channel")
    (win / "card.json").write_text(json.dumps(old, indent=1))
    r = CliRunner().invoke(app, ["export", str(res.run_dir), "--format", "onnx"])
    assert r.exit_code == 0, r.output
    again = WinnerCard.load(win / "card.json")
    assert again.test_accuracy_int8 == pytest.approx(card.test_accuracy_int8) and again.bits == card.bits
    assert "ship" not in json.loads((win / "card.json").read_text())
    md = (win / "card.md").read_text()
    # the advice is rendered from the card as it is now (for the pixel7 profile: its .tflite files, by the
    # profile's predicted int8 speed-up and the .tflite accuracies), never the stale text stored
    assert f"**Ship {ship_advice(again)}.**" in md and "stale" not in md
    assert again.target is not None and ship_advice(again).startswith(("model.tflite", "model.int8.tflite"))
    r = CliRunner().invoke(app, ["report", str(res.run_dir)])  # the report's decision box reads the card
    assert r.exit_code == 0, r.output
    assert f"Ship {html.escape(ship_advice(again))}." in (res.run_dir / "report.html").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not litert.available(), reason='needs pip install "hwnas[litert]"')
def test_litert_files_run_in_the_interpreter_with_the_accuracy_on_the_card(run_dir, distilled):
    import shutil

    from ai_edge_litert.interpreter import Interpreter
    from typer.testing import CliRunner

    from nas.cli import app

    win = run_dir / "tfl"  # a copy of the distilled winner, exported to LiteRT by `nas export`
    shutil.copytree(run_dir / distilled.folder, win)
    assert distilled.tflite.written is False and not (win / "model.tflite").exists()  # tflite=False
    r = CliRunner().invoke(app, ["export", str(run_dir), "--folder", "tfl", "--format", "tflite"])
    assert r.exit_code == 0 and "LiteRT:" in r.output, r.output
    card = json.loads((win / "card.json").read_text())
    tfl = card["tflite"]
    assert tfl["written"] and set(tfl["files"]) == {"model.tflite", "model.int8.tflite"}, tfl
    assert {"model.tflite", "model.int8.tflite"} <= set(card["files"])
    side = card["input"]["shape"][-1]
    x, y = _run_data(run_dir).test_arrays(resolution=side)
    # fp32: the same function as the torch model (and the ONNX file), at the priced input shape
    it = Interpreter(model_path=str(win / "model.tflite"), num_threads=1)
    it.allocate_tensors()
    assert list(it.get_input_details()[0]["shape"]) == card["input"]["shape"]
    model, _ = load_checkpoint(win / "model.pt")
    it.set_tensor(it.get_input_details()[0]["index"], x[:1])
    it.invoke()
    with torch.no_grad():
        want = model(torch.from_numpy(x[:1])).numpy()
    assert np.allclose(it.get_tensor(it.get_output_details()[0]["index"]), want, atol=1e-4)
    # int8: really integer (litert-torch #499: an "int8" export that came out float)
    io8 = tfl["io_int8"]
    assert io8["input"]["dtype"] == "int8" and io8["input"]["scale"] > 0
    it8 = Interpreter(model_path=str(win / "model.int8.tflite"), num_threads=1)
    assert any(d["op_name"] == "CONV_2D" and d["inputs"] is not None for d in it8._get_ops_details())
    assert any(t["dtype"] == np.int8 and len(t["shape"]) == 4 and t["shape"][0] > 1 for t in it8.get_tensor_details())
    # the card's accuracies are what the interpreter gives on the test split
    assert tfl["test_accuracy_fp32"] == pytest.approx(litert.tflite_accuracy(win / "model.tflite", x[:300], y[:300]),
                                                      abs=0.1)  # a tenth of the split: the same ballpark
    assert abs(tfl["test_accuracy_fp32"] - card["test_accuracy_fp32"]) < 0.005  # same network as model.onnx
    assert abs(tfl["test_accuracy_int8"] - tfl["test_accuracy_fp32"]) < 0.05
    assert tfl["host_latency_fp32_ms"] > 0 and tfl["host_latency_int8_ms"] > 0
    assert "LiteRT (`model.tflite`, `model.int8.tflite`) fp32: test accuracy" in (win / "card.md").read_text()
    # issue 28: host-litert's price of the same files beside their timing (its ops timed first)
    assert tfl["predicted_label"].startswith("host-litert (measured"), tfl
    assert tfl["predicted_fp32_ms"] > 0 and tfl["predicted_int8_ms"] > 0
    assert f"{tfl['host_latency_fp32_ms']:.3f} ms (predicted {tfl['predicted_fp32_ms']:.3f} ms" in \
        (win / "card.md").read_text()
    # --format onnx re-writes the ONNX files from model.pt and leaves the LiteRT section as it was
    (win / "model.onnx").unlink()
    r = CliRunner().invoke(app, ["export", str(run_dir), "--folder", "tfl", "--format", "onnx"])
    assert r.exit_code == 0 and (win / "model.onnx").is_file() and "ONNX:" in r.output, r.output
    again = json.loads((win / "card.json").read_text())
    assert again["test_accuracy_fp32"] == pytest.approx(card["test_accuracy_fp32"], abs=1e-9)
    assert again["tflite"] == json.loads(json.dumps(tfl))  # untouched by an ONNX-only export
    r = CliRunner().invoke(app, ["export", str(run_dir), "--folder", "tfl", "--format", "coreml"])
    assert r.exit_code == 2 and "choose from onnx, tflite" in r.output
    r = CliRunner().invoke(app, ["export", str(run_dir), "--folder", "nothing-here"])
    assert r.exit_code == 2 and "holds no trained winner" in r.output


@pytest.mark.slow
@pytest.mark.skipif(not litert.available(), reason='needs pip install "hwnas[litert]"')
def test_export_rewrites_the_files_distill_wrote_byte_for_byte(run_dir, knee):
    """Issue 25: `nas export --format tflite` re-quantized model.int8.tflite to another file (24.5%
    -> 23.0% int8 accuracy from one model.pt). The distilled model was calibrated channels_last and
    at --threads 2, the reloaded model.pt contiguous at the process's thread count (1 here, as
    conftest sets): the activations summed in another order moved the int8 scales. The knee's
    winner, as `nas distill` wrote it, is exported again in a copy of its folder. And a winner
    distilled with a seed other than the run's was re-calibrated on the images the run's seed
    draws: one distilled with seed 5 (ONNX only: the int8 ONNX file is calibrated on the same
    images) is exported twice, each export giving distill's bytes."""
    import shutil

    from nas.api import export_run

    _, card = knee
    # the two paths' thread counts differ (and distill left this process's as it found it)
    assert torch.get_num_threads() == 1 and DistillConfig().threads == 2
    assert card.tflite.written, card.tflite
    first = run_dir / card.folder
    shutil.copytree(first, run_dir / "twice")
    again = export_run(run_dir, "twice", ("onnx", "tflite"))
    for name in ("model.tflite", "model.int8.tflite", "model.onnx", "model.int8.onnx"):
        assert (run_dir / "twice" / name).read_bytes() == (first / name).read_bytes(), name
    assert again.tflite.test_accuracy_int8 == card.tflite.test_accuracy_int8
    assert again.test_accuracy_int8 == card.test_accuracy_int8

    seeded = distill_run(run_dir, DistillConfig(**{**FAST, "kd": False, "tflite": False}, measure_host=False,
                                                out="calib5", seed=5))
    assert seeded.calibration_seed == 5 != read_run_config(run_dir)[0].seed  # not the run's seed
    shutil.copytree(run_dir / "calib5", run_dir / "calib5-as-distilled")
    for _ in range(2):
        again = export_run(run_dir, "calib5", ("onnx",))
        for name in ("model.onnx", "model.int8.onnx"):
            assert (run_dir / "calib5" / name).read_bytes() == (run_dir / "calib5-as-distilled" / name).read_bytes(), name
        assert again.test_accuracy_int8 == seeded.test_accuracy_int8 and again.calibration_seed == 5


@pytest.mark.slow
def test_a_pick_that_resolves_to_an_already_trained_winner_copies_it(run_dir, distilled, capsys):
    """Issue 25: `--pick knee` when the knee is the best trial retrained an identical model without
    a word. A pick that resolves to the trial a winner folder holds, with the same recipe, copies
    that folder (and says so); another recipe trains."""
    pick = f"trial={distilled.trial}"
    stages = set()
    card = distill_run(run_dir, DistillConfig(**FAST, pick=pick), progress=lambda s, d, t: stages.add(s))
    assert not stages  # nothing trained, exported or timed
    win, copy = run_dir / "winner", run_dir / f"winners/trial-{distilled.trial}"
    assert card.folder == f"winners/trial-{distilled.trial}" and card.pick == pick and card.copied_from == "winner"
    assert card.recipe == distilled.recipe and card.recipe and card.recipe.startswith("sha256:")
    for f in ("model.pt", "model.onnx", "model.int8.onnx"):
        assert (copy / f).read_bytes() == (win / f).read_bytes(), f
    assert WinnerCard.load(copy / "card.json") == card
    assert card.to_dict() | {"pick": "best", "folder": "winner", "copied_from": None} == distilled.to_dict()
    assert "The same trial as `winner/`, trained with the same recipe" in (copy / "card.md").read_text()
    assert "already holds trained with the same recipe" in (run_dir / "search.log").read_text()
    assert not list(copy.parent.glob(".*"))  # no half-made copy left beside it
    # a copy of a copy names the folder that was trained
    again = distill_run(run_dir, DistillConfig(**FAST, pick=pick, out="mine"))
    assert again.copied_from == "winner" and again.folder == "mine"
    # `nas distill` says so in one line (its printer, given this test's recipe: the CLI's own trains LiteRT too)
    from nas.cli._run import _distill

    capsys.readouterr()
    _distill(run_dir, DistillConfig(**FAST, pick=pick, out="cli"))
    printed = capsys.readouterr().out.splitlines()
    said = [ln for ln in printed if "not retrained" in ln]
    assert said == ["the same trial as winner/, trained with the same recipe: winner/ already holds it, copied to "
                    "cli/ (not retrained)"], printed
    assert (run_dir / "cli" / "model.onnx").read_bytes() == (win / "model.onnx").read_bytes()
    # another recipe (here the seed) is another model: trained
    other = distill_run(run_dir, DistillConfig(**{**FAST, "kd": False}, pick=pick, seed=7, measure_host=False,
                                               out="seed7"))
    assert other.copied_from is None and other.recipe != distilled.recipe and other.trial == distilled.trial


def test_the_recipe_digest_changes_with_what_trains_the_winner_only(tmp_path):
    from nas.winner import recipe_digest

    base = DistillConfig(seed=0)
    d = recipe_digest(base, "k", "builtin sha256:1")
    # where the files go and where they train: the same recipe
    for same in (dict(pick="knee"), dict(out="x"), dict(force=True), dict(threads=1), dict(accelerator="cpu")):
        assert recipe_digest(DistillConfig(seed=0, **same), "k", "builtin sha256:1") == d, same
    for other in (dict(epochs=6.0), dict(lr=0.05), dict(seed=1), dict(kd=True), dict(teacher_epochs=3.0),
                  dict(own_side_epochs=2.0), dict(calibration_images=128), dict(tflite=False), dict(start="auto")):
        assert recipe_digest(DistillConfig(**{"seed": 0, **other}), "k", "builtin sha256:1") != d, other
    assert recipe_digest(base, "k2", "builtin sha256:1") != d and recipe_digest(base, "k", "builtin sha256:2") != d
    t1, t2 = tmp_path / "t1.pt", tmp_path / "t2.pt"  # a teacher by its weights, not its path
    t1.write_bytes(b"a")
    t2.write_bytes(b"a")
    assert recipe_digest(DistillConfig(seed=0, teacher=str(t1)), "k", "") == \
        recipe_digest(DistillConfig(seed=0, teacher=str(t2)), "k", "")
    t2.write_bytes(b"b")
    assert recipe_digest(DistillConfig(seed=0, teacher=str(t1)), "k", "") != \
        recipe_digest(DistillConfig(seed=0, teacher=str(t2)), "k", "")


def test_without_the_litert_extra_the_card_says_how_to_get_tflite(monkeypatch, tmp_path):
    from nas.winner import tflite_section

    monkeypatch.setattr(litert, "available", lambda: False)  # the extra absent, as on a plain install
    x = np.zeros((1, 1, 8, 8), np.float32)
    sec = tflite_section(torch.nn.Identity(), tmp_path, [1, 1, 8, 8], x, lambda: [(x, np.zeros(1, np.int64))])
    assert sec == TfliteSection(written=False, note=litert.INSTALL_HINT) and not any(tmp_path.iterdir())
    with pytest.raises(nas.errors.ExportError, match=r"litert extra: pip install \"hwnas\[litert\]\""):
        litert.require()


@pytest.mark.slow
def test_parent_teacher_is_the_winner_unpruned_and_float(run_dir):

    card = distill_run(run_dir, DistillConfig(**{**FAST, "teacher_epochs": None}, teacher_net="parent",
                                              measure_host=False, out="winner-parent"))
    want = nas.parse_candidate(card.candidate).unpruned().replace_bits(32).key
    assert card.teacher == want and "unpruned" in card.teacher_source
    assert card.distillation.teacher_net == "parent"
    assert card.distillation.teacher_epochs == 2 * FAST["epochs"]  # default: twice the student's
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


def test_each_pick_has_its_own_folder():
    from nas.winner import winner_folder

    assert winner_folder("best") == "winner" and winner_folder("knee") == "winners/knee"
    assert winner_folder("latency<=2.5") == "winners/latency-le-2.5" and winner_folder("trial=12") == "winners/trial-12"
    from nas.winner import rule_of_folder

    for rule in ("best", "knee", "latency<=2.5", "trial=12"):  # the folder names read back to their rule
        assert rule_of_folder(winner_folder(rule)) == rule
    assert rule_of_folder("mine") is None and rule_of_folder("winners/other") is None
    for bad in ("../x", "/abs", ""):
        with pytest.raises(DistillError, match="--out"):
            DistillConfig(out=bad).validate()


@pytest.mark.slow
def test_a_photo_folder_goes_from_search_to_a_shipped_winner(tmp_path, ray_session):
    """An image folder (on disk, never all in memory) through the whole pipeline: the winner is
    trained at its own side from the disk cache, and its card's test accuracy is what the shipped
    ONNX file scores on the folder's test split, read a batch at a time."""
    root = png_folder(tmp_path / "photos", n=30, size=40)
    res = run_search(SearchConfig(trials=2, workers=1, out=str(tmp_path / "out"), name="f", references=0,
                                  proxy=dict(TINY_PROXY), data=str(root), distill=False, proxy_kind="train"))
    stages = set()
    card = distill_run(res.run_dir, DistillConfig(**FAST, measure_host=False),
                       progress=lambda stage, done, total: stages.add(stage))
    assert "image folder" in card.dataset and card.num_classes == 2
    own = nas.parse_candidate(card.candidate).resolution  # 128-224: never a proxy side of 40 px photos
    assert {f"resizing photos/train images to {own} px", f"resizing photos/test images to {own} px"} <= stages
    assert not any(s.startswith(("decoding", "counting")) for s in stages)  # the search's cache is used
    win = res.run_dir / "winner"
    _assert_the_shipped_network_is_the_priced_one(win / "model.onnx", card.to_dict())
    ds = nas.load_dataset(root)
    x, y = ds.test_arrays(resolution=own)
    assert not isinstance(x, np.ndarray)  # read from the disk cache a batch at a time
    sess = ort.InferenceSession(str(win / "model.onnx"), providers=["CPUExecutionProvider"])
    pred = np.concatenate([sess.run(None, {"input": x[i:i + 5]})[0].argmax(1) for i in range(0, len(x), 5)])
    assert card.test_accuracy_fp32 == pytest.approx(float((pred == y).mean()))


def _assert_the_shipped_network_is_the_priced_one(path, card):
    """The ONNX file takes the candidate at its own resolution, and its convolutions are, in order,
    those of ``candidate.ops()`` at that size (output sides and channels), the list the device
    profile priced."""
    import onnx
    from onnx import shape_inference

    cand = nas.parse_candidate(card["candidate"])
    model = shape_inference.infer_shapes(onnx.load(str(path)))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [card["input"]["shape"][1], cand.resolution, cand.resolution]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    got = [(shapes[n.output[0]][1], shapes[n.output[0]][2]) for n in model.graph.node if n.op_type == "Conv"]
    torch_model = nas.build_model(cand, card["num_classes"], card["input"]["shape"][1])
    want = []
    x = torch.zeros(1, card["input"]["shape"][1], cand.resolution, cand.resolution)
    hooks = [m.register_forward_hook(lambda m, i, o: want.append((o.shape[1], o.shape[2])))
             for m in torch_model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        torch_model.eval()(x)
    for h in hooks:
        h.remove()
    assert got == want and len(got) > 10
    # ...and the builder's network is the operator list the profile prices (stem to head, sides)
    ops = cand.ops(num_classes=card["num_classes"], in_channels=card["input"]["shape"][1])
    assert ops[0].h == cand.resolution and ops[0].out_hw[0] == want[0][1]
