"""nas.winner._card: the typed winner card, its card.json (old and new) and what is rendered from it;
nas.search's typed records (the worker's result, the trial record read back)."""

import json
from dataclasses import replace

import optuna
import pytest

from nas.errors import DistillError
from nas.search import WorkerResult, bit_counts, trial_row
from nas.space import Candidate
from nas.train import ProxyResult
from nas.winner import WinnerCard

KEY = "mobilenetv3.large:r224:w0.75:k3e1/k3e4,k3e3/k5e3,k5e3,k5e3/k3e6,k3e2.5,k3e2.3,k3e2.3/k3e6,k3e6/k5e6,k5e6,k5e6"


def old_card(channels: int = 1, fp32: float = 0.8, int8: float = 0.79, speed: float = 1.5) -> dict:
    """card.json as the code before the typed card wrote it (be50e91, nas/winner/_distill.py):
    derived text stored beside the data, the bits as a display string."""
    side = 224
    return {
        "candidate": KEY, "trial": 3, "pick": "best", "folder": "winner", "num_classes": 2,
        "trained_at": {"proxy_side": 28, "proxy_side_test_accuracy": 0.7, "start": "from scratch",
                       "own_side": side, "own_side_epochs": 1.0},
        "device": "pixel7", "device_summary": "pixel7, estimated (...)", "provenance": "estimated",
        "device_label": "Pixel 7 (TFLite, 4 threads)", "device_source": "estimated",
        "predicted_latency_ms": 3.2, "latency_budget_ms": 4.0, "latency_budget_source": "--latency-ms",
        "latency_note": f"predicted for the candidate at {side}x{side}x{channels} with 2 classes",
        "host_latency_ms": {"label": "this host", "measured_fp32": 3.0, "predicted_fp32": 2.5,
                            "measured_int8": 3.0 / speed, "predicted_int8": 1.5, "speedup_int8": speed,
                            "note": "timed"},
        "macs": 150_000_000, "params": 3_000_000, "bytes": 3_000_000, "bits": "32:15", "keep": "1-1 (mean 1.00)",
        "memory": {"at_bit_widths": 4_000_000, "fp32_file": 12_000_000, "note": "peak"},
        "proxy_accuracy": 0.6, "test_accuracy_torch": fp32, "test_accuracy_fp32": fp32, "test_accuracy_int8": int8,
        "teacher": None, "teacher_source": "", "teacher_accuracy": None,
        "distillation": {"kd": False, "temperature": 4.0, "alpha": 0.7, "epochs": 5.0, "teacher_epochs": 10.0,
                         "teacher_net": None, "batch_size": 64, "lr": 0.1, "threads": 2, "trained_on": "CPU"},
        "training_seconds": {"teacher": 0.0, "student": 12.0, "total": 20.0},
        "input": {"shape": [1, channels, side, side], "dtype": "float32", "layout": "NCHW",
                  "resize": f"{side}x{side}, bilinear (antialiased), the whole image (no crop)",
                  "channels": "grayscale (1)" if channels == 1 else "RGB (3)",
                  "normalisation": "x / 255, minus mean, divided by std, per channel",
                  "mean": [0.5] * channels, "std": [0.25] * channels},
        "dataset": "built-in", "class_names": ["a", "b"],
        "files": {"model.pt": "state dict", "model.onnx": "fp32", "model.int8.onnx": "int8"},
        "calibration_images": 256,
        "tflite": {"written": False, "note": "not asked for (--format onnx)"},
        "created": "2026-12-01T10:00:00+0000",
        "ship": "model.int8.onnx: stale advice", "python_snippet": "print('stale')",
    }


def test_a_card_json_written_before_the_typed_card_loads_and_round_trips():
    card = WinnerCard.from_json(json.dumps(old_card()))
    assert card.bits == ((32, 15),) == bit_counts(Candidate.parse(KEY))  # recounted from the key
    assert card.input.channels == 1 and card.input.side == 224 and card.host_latency_ms.speedup_int8 == 1.5
    assert card.trained_at.proxy_side == 28 and card.tflite.written is False
    stored = json.loads(card.to_json())
    for derived in ("ship", "python_snippet", "latency_note"):
        assert derived not in stored
    assert "channels" not in stored["input"] and "speedup_int8" not in stored["host_latency_ms"]
    assert stored["bits"] == [[32, 15]] and stored["input"]["shape"] == [1, 1, 224, 224]
    assert WinnerCard.from_json(card.to_json()) == card
    md = card.markdown()
    assert "stale" not in md and "15 blocks at float32" in md
    assert "predicted for the candidate at 224x224x1 with 2 classes" in md


def test_bad_card_json_is_a_clear_error(tmp_path):
    with pytest.raises(DistillError, match="unknown field"):
        WinnerCard.from_json({**old_card(), "acuracy": 1})
    broken = old_card()
    del broken["trial"]
    with pytest.raises(DistillError, match="trial"):
        WinnerCard.from_json(broken)
    (tmp_path / "card.json").write_text("{not json")
    with pytest.raises(DistillError, match="card.json"):
        WinnerCard.load(tmp_path / "card.json")


def test_the_ship_advice_follows_the_numbers_it_is_rendered_from():
    card = WinnerCard.from_json(old_card(fp32=0.8, int8=0.795, speed=1.5))
    assert card.ship.startswith("model.int8.onnx: 1.50x") and "**Ship model.int8.onnx" in card.markdown()
    worse = replace(card, test_accuracy_int8=0.6)  # what `nas export` does: new accuracies, nothing else
    assert worse.ship.startswith("model.onnx (fp32): int8 ran 1.50x") and "+20.00 points" in worse.ship
    assert f"**Ship {worse.ship}.**" in worse.markdown()


@pytest.mark.parametrize("channels,mode", [(1, "'L'"), (3, "'RGB'")])
def test_the_snippet_takes_the_models_channels_side_and_normalisation(channels, mode):
    card = WinnerCard.from_json(old_card(channels=channels))
    code = card.python_snippet
    assert f".convert({mode}).resize((224, 224)" in code and f".reshape(224, 224, {channels})" in code
    assert f"MEAN = np.array({[0.5] * channels!r}" in code and ".transpose(2, 0, 1)[None]" in code
    assert card.litert_snippet is None  # no .tflite file
    assert f"Input: [1, {channels}, 224, 224] float32 NCHW: {'grayscale (1)' if channels == 1 else 'RGB (3)'}" \
        in card.markdown()
    compile(code, "classify.py", "exec")


def test_the_litert_snippet_feeds_the_layout_read_from_the_file():
    card = WinnerCard.from_json(old_card(channels=3))
    files = {**card.files, "model.tflite": "fp32", "model.int8.tflite": "int8"}
    for layout, shape, feed in (("NCHW", (1, 3, 224, 224), ".transpose(2, 0, 1)[None]"),
                                ("NHWC", (1, 224, 224, 3), "[None]  # HWC -> NHWC")):
        tfl = replace(card.tflite, written=True, files=files, fp32_input_layout=layout, fp32_input_shape=shape)
        lite = replace(card, tflite=tfl).litert_snippet
        assert lite is not None and "Interpreter(model_path='model.tflite'" in lite and feed in lite
        assert lite in replace(card, tflite=tfl).markdown()
        compile(lite, "classify_tflite.py", "exec")


def test_the_worker_result_is_a_typed_record_and_its_facts_are_what_a_trial_stores():
    p = ProxyResult(KEY, 0.5, 1.2, 3.0, 2.5, 0.5, 400.0, 10, resolution=28, val_loss=1.1)
    out = WorkerResult(p, params=10, bytes=20, memory=30, host="h", node="n", pid=1)
    with pytest.raises(AttributeError):
        out.params = 11  # frozen
    with pytest.raises(AttributeError):
        p.accuracy = 1.0  # frozen
    facts = out.trial_facts()
    assert facts["proxy_side"] == 28 and facts["proxy_seconds"] == 3.0 and facts["params"] == 10
    assert json.loads(json.dumps(facts)) == facts  # what Optuna stores as a user attribute


def _trial(attrs: dict):
    return optuna.trial.create_trial(params={}, distributions={}, values=[0.5, 1.0], user_attrs=attrs)


def test_the_trial_record_reads_its_sides_structured_and_old_studies_still_read():
    info = {"macs": 1, "bits": "32:15", "keep": "1-1", "proxy_side": 28, "params": 5}
    now = trial_row(_trial({"key": KEY, "latency_ms": 1.0, "status": "evaluated", "accuracy": 0.5, "info": info}))
    assert now.resolution == 224 and now.proxy_side == 28  # own side from the key grammar, not a regex
    old = {k: v for k, v in info.items() if k != "proxy_side"} | {"resolution": 16}  # before 0.1.1
    then = trial_row(_trial({"key": KEY, "latency_ms": 1.0, "status": "evaluated", "accuracy": 0.5, "info": old}))
    assert then.resolution == 224 and then.proxy_side == 16
    odd = trial_row(_trial({"key": "not a key", "status": "failed"}))
    assert odd.resolution is None and odd.proxy_side is None


def _targeted(runtime: str, fp32_ms: float, int8_ms: float, **changes):
    from nas.winner import TargetLatency

    card = WinnerCard.from_json(old_card(fp32=0.8, int8=0.795, speed=0.55))  # int8 slower on this host
    return replace(card, target=TargetLatency(runtime=runtime, label=f"phone ({runtime})", predicted_fp32=fp32_ms,
                                              predicted_int8=int8_ms), **changes)


def test_a_tflite_profile_is_told_to_ship_tflite_by_the_phones_int8_speedup_not_this_hosts():
    tfl = replace(WinnerCard.from_json(old_card()).tflite, written=True, test_accuracy_fp32=0.8,
                  test_accuracy_int8=0.796, files={"model.tflite": "fp32", "model.int8.tflite": "int8"})
    card = _targeted("tflite-xnnpack (estimated)", 3.0, 1.2, tflite=tfl)
    assert card.ship.startswith("model.int8.tflite: the pixel7 profile (tflite-xnnpack (estimated)) predicts int8 "
                                "at 2.50x the fp32 speed")
    assert "1.200 ms against 3.000 ms" in card.ship and "0.40 points less" in card.ship  # the .tflite accuracies
    md = card.markdown()
    head = md[:md.index("- Device:")]
    assert f"**Ship {card.ship}.**" in head and "onnx" not in card.ship
    # this host's timing is a secondary line that says what it is
    assert "_On this host (this host) with onnxruntime, not the target device: model.int8.onnx ran 0.55x" in head
    # int8 too costly on the phone's files: fp32 .tflite
    costly = replace(card, tflite=replace(tfl, test_accuracy_int8=0.7))
    assert costly.ship.startswith("model.tflite (fp32):") and "costs 10.00 points" in costly.ship
    # no .tflite written: the advice still names the phone's format and how to get it
    bare = _targeted("tflite", 3.0, 1.2)
    assert bare.ship.startswith("model.int8.tflite:") and "nas export RUN --folder winner --format tflite" in bare.ship


def test_an_onnxruntime_profile_is_told_to_ship_onnx_and_export_cannot_leave_it_stale():
    card = _targeted("onnxruntime-cpu", 2.0, 1.0)
    assert card.ship.startswith("model.int8.onnx: the pixel7 profile (onnxruntime-cpu) predicts int8 at 2.00x")
    assert "tflite" not in card.ship
    slow = _targeted("onnxruntime-cpu", 2.0, 2.0)
    assert slow.ship.startswith("model.onnx (fp32):") and "int8 gains nothing there" in slow.ship
    # what `nas export` does (new accuracies, nothing else): the advice follows, and survives card.json
    worse = replace(card, test_accuracy_int8=0.6)
    assert worse.ship.startswith("model.onnx (fp32):") and "costs 20.00 points" in worse.ship
    again = WinnerCard.from_json(worse.to_json())
    assert again == worse and again.ship == worse.ship and "ship" not in json.loads(worse.to_json())


def test_export_of_a_half_made_winner_folder_names_the_distill_that_makes_it(tmp_path):
    """A nas distill stopped after model.pt but before its card: the advice is that folder's own
    --pick with --force, not a distill of the best into winner/."""
    from nas.winner._ship import _no_winner

    run = tmp_path / "run"
    knee = run / "winners" / "knee"
    knee.mkdir(parents=True)
    (knee / "model.pt").write_bytes(b"x")
    msg = _no_winner(run, "winners/knee", knee)
    assert "no card.json" in msg and f"nas distill {run} --pick knee --force" in msg
    assert "--pick 'latency<=2.5'`" in _no_winner(run, "winners/latency-le-2.5", run / "nope")
    assert f"nas distill {run}` first" in _no_winner(run, "winner", run / "nope")
    assert "--out mine" in _no_winner(run, "mine", run / "nope")


def test_the_tflite_line_shows_host_litert_s_prediction_beside_the_measurement():
    """Issue 28: the .tflite files' host timing with the host-litert profile's price of them."""
    d = old_card()
    d["tflite"] = {"written": True, "note": "host latency: XNNPACK, 1 thread",
                   "files": {"model.tflite": "fp32", "model.int8.tflite": "int8"},
                   "test_accuracy_fp32": 0.8, "test_accuracy_int8": 0.79,
                   "host_latency_fp32_ms": 2.0, "host_latency_int8_ms": 1.0,
                   "predicted_label": "host-litert (measured, uncalibrated, litert-xnnpack, 1 thread)",
                   "predicted_fp32_ms": 1.8, "predicted_int8_ms": 1.1}
    card = WinnerCard.from_json(json.dumps(d))
    assert WinnerCard.from_json(card.to_json()) == card
    md = card.markdown()
    assert "fp32: test accuracy 80.00%, 2.000 ms (predicted 1.800 ms, -10%)" in md
    assert "int8: test accuracy 79.00%, 1.000 ms (predicted 1.100 ms, +10%)" in md
    assert "host-litert (measured, uncalibrated, litert-xnnpack, 1 thread)'s" in md
    d["tflite"].update(predicted_label=None, predicted_fp32_ms=None, predicted_int8_ms=None,
                       predicted_note="host-litert could not price this network (x)")
    md = WinnerCard.from_json(json.dumps(d)).markdown()
    assert "(predicted 1.800 ms" not in md and "- LiteRT prediction: host-litert could not price this network (x)." in md
