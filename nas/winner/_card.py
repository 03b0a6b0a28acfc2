"""The model card of a winner: which file to ship, how to feed it, and what each number was
measured on.

``WinnerCard`` is the data (made by ``nas.winner._distill``, updated by ``nas export``), a frozen
record written as ``card.json`` (``to_json``) and read back with ``WinnerCard.from_json`` /
``WinnerCard.load``, which also read the cards written before it was typed. It stores what was
measured and decided; everything derived from that (the "Ship ..." advice, the channel and
normalisation sentences, the int8 speed-up, the Python snippets, the markdown card) is computed
when rendered, so re-exporting the winner with new accuracies can never leave the advice stale.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nas.errors import CandidateSyntaxError, DistillError
from nas.search import bit_counts
from nas.space import Candidate

__all__ = ["WinnerCard", "InputSpec", "TrainedAt", "HostLatency", "TargetLatency", "MemoryFacts", "Distillation",
           "TrainingSeconds", "TfliteSection", "PteSection", "ship_advice", "host_line", "python_snippet", "litert_snippet",
           "card_markdown"]


@dataclass(frozen=True)
class InputSpec:
    """What the exported model takes: shape [1, C, H, W] float32 NCHW, normalised per channel."""

    shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dtype: str = "float32"
    layout: str = "NCHW"
    resize: str = ""

    def __post_init__(self) -> None:
        for name in ("shape", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.shape) != 4 or len(self.mean) != self.channels or len(self.std) != self.channels:
            raise DistillError(f"card input: shape {list(self.shape)} with {len(self.mean)} means and "
                               f"{len(self.std)} stds is not one image of [1, C, H, W] with C of each")

    @property
    def channels(self) -> int:
        return int(self.shape[1])

    @property
    def side(self) -> int:
        return int(self.shape[2])

    @property
    def channels_text(self) -> str:
        return "grayscale (1)" if self.channels == 1 else f"RGB ({self.channels})"

    @property
    def normalisation(self) -> str:
        return "x / 255, minus mean, divided by std, per channel"


@dataclass(frozen=True)
class TrainedAt:
    proxy_side: int
    proxy_side_test_accuracy: float
    start: str  # where the weights came from: "from scratch", "initialised from the supernet (digest ...), ..."
    own_side: int
    own_side_epochs: float
    supernet: str | None = None  # the digest of the run's supernet the winner started from, if it did


@dataclass(frozen=True)
class HostLatency:
    """The exported ONNX files timed on this host next to the host profile's predictions."""

    label: str
    measured_fp32: float
    predicted_fp32: float
    measured_int8: float
    predicted_int8: float
    note: str

    @property
    def speedup_int8(self) -> float:
        return self.measured_fp32 / self.measured_int8 if self.measured_int8 > 0 else math.nan


@dataclass(frozen=True)
class TargetLatency:
    """What the device profile (the target phone) predicts for this network in fp32 and in int8,
    and the runtime it describes: the ship advice's reasoning, never this host's timing."""

    runtime: str  # the profile's ``runtime``: tflite, tflite-xnnpack, onnxruntime-cpu, ...
    label: str
    predicted_fp32: float
    predicted_int8: float

    @property
    def speedup_int8(self) -> float:
        return self.predicted_fp32 / self.predicted_int8 if self.predicted_int8 > 0 else math.nan

    @property
    def is_tflite(self) -> bool:
        r = self.runtime.lower()
        return "tflite" in r or "litert" in r


@dataclass(frozen=True)
class MemoryFacts:
    at_bit_widths: int
    fp32_file: int
    note: str


@dataclass(frozen=True)
class Distillation:
    kd: bool
    temperature: float
    alpha: float
    epochs: float
    teacher_epochs: float
    teacher_net: str | None
    batch_size: int
    lr: float
    threads: int
    trained_on: str = "CPU"


@dataclass(frozen=True)
class TrainingSeconds:
    teacher: float
    student: float
    total: float


@dataclass(frozen=True)
class _FilesSection:
    """What every on-device format's section of the card holds: whether its files were written
    (or why not), the files, the errors of those that failed, their test accuracy and host latency."""

    written: bool
    note: str = ""
    files: dict[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    test_accuracy_fp32: float | None = None
    test_accuracy_int8: float | None = None
    host_latency_fp32_ms: float | None = None
    host_latency_int8_ms: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", tuple(self.errors))


@dataclass(frozen=True)
class TfliteSection(_FilesSection):
    """The LiteRT files of a winner (``nas.winner._ship.tflite_section``), or why there are none."""

    io_int8: dict | None = None
    # model.tflite's input as read from the exported file: its shape and "NCHW" or "NHWC"
    # (None on cards written before it was recorded)
    fp32_input_shape: tuple[int, ...] | None = None
    fp32_input_layout: str | None = None
    # the host-litert profile's prediction of the same files (the litert extra prices them the way
    # it timed them): its label (with "uncalibrated" until it is calibrated) and milliseconds;
    # None on cards written before it was kept, or when pricing failed (``predicted_note`` says why)
    predicted_label: str | None = None
    predicted_fp32_ms: float | None = None
    predicted_int8_ms: float | None = None
    predicted_note: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fp32_input_shape is not None:
            object.__setattr__(self, "fp32_input_shape", tuple(self.fp32_input_shape))


@dataclass(frozen=True)
class PteSection(_FilesSection):
    """The ExecuTorch files of a winner (``nas.winner._ship.pte_section``), or why there are none."""

    executorch_version: str | None = None


@dataclass(frozen=True)
class WinnerCard:
    candidate: str
    trial: int
    pick: str
    folder: str
    num_classes: int
    device: str
    device_summary: str
    provenance: str
    device_label: str
    device_source: str
    predicted_latency_ms: float
    latency_budget_ms: float
    latency_budget_source: str
    macs: int | None
    params: int | None
    bytes: int | None
    bits: tuple[tuple[int, int], ...]  # (bit width, blocks at it), by width
    keep: str
    proxy_accuracy: float | None
    test_accuracy_torch: float
    test_accuracy_fp32: float
    test_accuracy_int8: float
    teacher: str | None
    teacher_source: str
    teacher_accuracy: float | None
    distillation: Distillation
    training_seconds: TrainingSeconds
    input: InputSpec
    dataset: str
    class_names: tuple[str, ...]
    files: dict[str, str]
    created: str
    trained_at: TrainedAt | None = None
    host_latency_ms: HostLatency | None = None
    memory: MemoryFacts | None = None
    calibration_images: int = 256
    # the seed that drew those images from the training split (the distillation's seed): `nas export`
    # draws the same ones, so it rewrites the int8 files byte for byte. None on cards written before
    # it was kept (the run's seed, which distillation used unless DistillConfig.seed said otherwise)
    calibration_seed: int | None = None
    tflite: TfliteSection = field(default_factory=lambda: TfliteSection(written=False))
    # ExecuTorch's model.pte / model.int8.pte: only `nas export RUN --format pte` writes them
    pte: PteSection = field(default_factory=lambda: PteSection(written=False))
    target: TargetLatency | None = None  # None on cards written before the profile's int8 prediction was kept
    # The digest of what trained these files (nas.winner._distill.recipe_digest): a later pick that
    # resolves to the same trial with the same recipe copies this folder instead of retraining.
    # None on cards written before it was kept.
    recipe: str | None = None
    copied_from: str | None = None  # the run's folder these files were copied from, same trial and recipe
    # a run on several devices: the devices whose winner this network is (trained once, a folder each)
    serves: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "serves", tuple(self.serves))
        object.__setattr__(self, "bits", tuple((int(b), int(n)) for b, n in self.bits))

    # ---- derived when rendered, never stored
    @property
    def ship(self) -> str:
        return ship_advice(self)

    @property
    def latency_note(self) -> str:
        side = Candidate.parse(self.candidate).resolution
        return f"predicted for the candidate at {side}x{side}x{self.input.channels} with {self.num_classes} classes"

    @property
    def python_snippet(self) -> str:
        return python_snippet(self)

    @property
    def litert_snippet(self) -> str | None:
        return litert_snippet(self)

    def markdown(self) -> str:
        return card_markdown(self)

    def with_changes(self, **changes: Any) -> "WinnerCard":
        return replace(self, **changes)

    # ---- card.json
    def to_dict(self) -> dict:
        d = asdict(self)
        d["bits"] = [list(p) for p in self.bits]
        return json.loads(json.dumps(d))  # tuples as lists: what json.loads gives back

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str | dict) -> "WinnerCard":
        """A card from card.json's text (or its parsed dict), including cards written before the
        card was typed (their stored derived fields are dropped and computed again)."""
        try:
            d = json.loads(text) if isinstance(text, str) else dict(text)
        except ValueError as exc:
            raise DistillError(f"card.json is not JSON: {exc}") from None
        if not isinstance(d, dict):
            raise DistillError("card.json does not hold a winner card")
        d = _legacy(d)
        nested = {"distillation": Distillation, "training_seconds": TrainingSeconds, "input": InputSpec,
                  "trained_at": TrainedAt, "host_latency_ms": HostLatency, "memory": MemoryFacts,
                  "tflite": TfliteSection, "pte": PteSection, "target": TargetLatency}
        for k, sub in nested.items():
            if isinstance(d.get(k), dict):
                d[k] = _make(sub, d[k], f"card.json {k}")
        return _make(cls, d, "card.json")

    @classmethod
    def load(cls, path: str | Path) -> "WinnerCard":
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise DistillError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            return cls.from_json(text)
        except DistillError as exc:
            raise DistillError(f"{path}: {exc}") from None


_DERIVED = {"": ("ship", "python_snippet", "latency_note"), "input": ("channels", "normalisation"),
            "host_latency_ms": ("speedup_int8",)}


def _legacy(d: dict) -> dict:
    """Cards written before the card was typed stored derived text beside the data, and the bits
    as a display string ("8:3,32:2"): drop the one, recount the other from the candidate key."""
    d = {k: v for k, v in d.items() if k not in _DERIVED[""]}
    for part in ("input", "host_latency_ms"):
        if isinstance(d.get(part), dict):
            d[part] = {k: v for k, v in d[part].items() if k not in _DERIVED[part]}
    if isinstance(d.get("bits"), str):
        try:
            d["bits"] = bit_counts(Candidate.parse(str(d.get("candidate", ""))))
        except CandidateSyntaxError as exc:
            raise DistillError(f"card.json candidate: {exc}") from None
    return d


def _make(cls, d: dict, what: str):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise DistillError(f"{what}: unknown field(s) {', '.join(unknown)}")
    try:
        return cls(**d)
    except TypeError as exc:  # a required field missing
        raise DistillError(f"{what}: {str(exc).split(') ', 1)[-1]}") from None


# ----------------------------------------------------------------------------- rendering

def ship_advice(card: WinnerCard) -> str:
    """Which file to ship to the target device: the format its runtime runs (.tflite for a
    tflite/LiteRT profile, ONNX for onnxruntime), fp32 or int8 by the profile's predicted int8
    speed-up for this network and the test accuracy int8 costs. Cards written before the
    profile's prediction was kept fall back to this host's timing (``_host_advice``)."""
    t = card.target
    if t is None:
        return _host_advice(card)
    tfl = card.tflite
    has_tflite = tfl.written and "model.tflite" in tfl.files
    a32, a8 = card.test_accuracy_fp32, card.test_accuracy_int8
    if t.is_tflite:
        files = ("model.tflite", "model.int8.tflite")
        if has_tflite and tfl.test_accuracy_fp32 is not None and tfl.test_accuracy_int8 is not None:
            a32, a8 = tfl.test_accuracy_fp32, tfl.test_accuracy_int8
    else:
        files = ("model.onnx", "model.int8.onnx")
    speed, drop = t.speedup_int8, (a32 - a8) * 100
    why = (f"the {card.device} profile ({t.runtime}) predicts int8 at {speed:.2f}x the fp32 speed for this "
           f"network ({t.predicted_int8:.3f} ms against {t.predicted_fp32:.3f} ms)")
    if math.isfinite(speed) and speed > 1.05 and drop <= 1.0:
        cost = f"at {drop:.2f} points less test accuracy" if drop > 0 else \
            f"with no loss of test accuracy (int8 scored {-drop:.2f} points higher)" if drop < 0 else \
            "at the same test accuracy"
        advice = f"{files[1]}: {why}, {cost}"
    elif math.isfinite(speed) and speed > 1.05:
        advice = f"{files[0]} (fp32): {why}, but int8 costs {drop:.2f} points of test accuracy"
    else:
        advice = f"{files[0]} (fp32): {why}, so int8 gains nothing there ({drop:+.2f} points)"
    if t.is_tflite and not has_tflite:
        advice += (f"; the .tflite files are not exported yet: `nas export RUN --folder {card.folder} --format "
                   f"tflite` writes them")
    return advice


def host_line(card: WinnerCard) -> str | None:
    """This host's timing of the ONNX files, said for what it is (not the phone); None when the
    files were not timed here."""
    h = card.host_latency_ms
    if h is None or not math.isfinite(h.speedup_int8):
        return None
    return (f"On this host ({h.label}) with onnxruntime, not the target device: model.int8.onnx ran "
            f"{h.speedup_int8:.2f}x the fp32 speed ({h.measured_int8:.3f} ms against {h.measured_fp32:.3f} ms)")


def _host_advice(card: WinnerCard) -> str:
    a32, a8 = card.test_accuracy_fp32, card.test_accuracy_int8
    speed = card.host_latency_ms.speedup_int8 if card.host_latency_ms else None
    drop = (a32 - a8) * 100
    if speed is None or not math.isfinite(speed):
        return (f"model.onnx (fp32); model.int8.onnx is {drop:+.2f} points less accurate and its speed was not "
                f"measured here: time both on the phone")
    if speed > 1.05 and drop <= 1.0:
        return (f"model.int8.onnx: {speed:.2f}x the fp32 speed on this host at {drop:.2f} points less test "
                f"accuracy")
    return (f"model.onnx (fp32): int8 ran {speed:.2f}x the fp32 speed on this host ({drop:+.2f} points), "
            f"not worth it here; time both on the phone, whose int8 kernels may differ")


def _preprocess(card: WinnerCard, layout: str) -> list[str]:
    """The lines shared by the snippets: classes, normalisation, and ``image(path)`` -> the
    model's input, from the model's real input (channels, side, mean and std)."""
    inp = card.input
    c, s = inp.channels, inp.side
    to_layout = ".transpose(2, 0, 1)[None]  # HWC -> NCHW, a batch of one" if layout == "NCHW" else \
        "[None]  # HWC -> NHWC, a batch of one"
    return [
        "import sys",
        "import numpy as np",
        "from PIL import Image",
        f"CLASSES = {list(card.class_names)!r}",
        f"MEAN = np.array({[float(m) for m in inp.mean]!r}, np.float32)",
        f"STD = np.array({[float(v) for v in inp.std]!r}, np.float32)",
        "",
        "",
        "def image(path):",
        f"    img = Image.open(path).convert({'L' if c == 1 else 'RGB'!r}).resize(({s}, {s}), Image.BILINEAR)",
        f"    x = np.asarray(img, np.float32).reshape({s}, {s}, {c}) / 255",
        f"    return ((x - MEAN) / STD){to_layout}",
        "",
        "",
    ]


def python_snippet(card: WinnerCard) -> str:
    """A script that classifies image files with the shipped fp32 model (onnxruntime), one
    class name per file; its input is the model's own (channels, side, normalisation)."""
    return "\n".join(_preprocess(card, "NCHW") + [
        "import onnxruntime as ort",
        "",
        "session = ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])",
        "for path in sys.argv[1:]:",
        "    logits = session.run(None, {'input': image(path)})[0]",
        "    print(CLASSES[int(logits.argmax())])",
    ])


def _predicted(pred: float | None, ms: float) -> str:
    """" (predicted 1.234 ms, -5%)" beside a measured time, or nothing."""
    if pred is None or not ms:
        return ""
    return f" (predicted {pred:.3f} ms, {(pred / ms - 1) * 100:+.0f}%)"


def litert_snippet(card: WinnerCard) -> str | None:
    """The same with model.tflite in the LiteRT interpreter, in the input layout read from the
    exported file; None when the winner has no .tflite file (or its layout was not recorded)."""
    tfl = card.tflite
    if not (tfl.written and "model.tflite" in tfl.files and tfl.fp32_input_layout in ("NCHW", "NHWC")):
        return None
    return "\n".join(_preprocess(card, tfl.fp32_input_layout) + [
        "from ai_edge_litert.interpreter import Interpreter",
        "",
        "interpreter = Interpreter(model_path='model.tflite', num_threads=1)",
        "interpreter.allocate_tensors()",
        "inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]",
        "for path in sys.argv[1:]:",
        "    interpreter.set_tensor(inp['index'], image(path))",
        "    interpreter.invoke()",
        "    print(CLASSES[int(interpreter.get_tensor(out['index']).argmax())])",
    ])


def card_markdown(card: WinnerCard) -> str:
    def pct(v):
        return "n/a" if v is None else f"{v * 100:.2f}%"

    h = card.host_latency_ms
    inp = card.input
    bits = ", ".join(f"{n} block{'s' if n != 1 else ''} at {'float32' if b == 32 else f'{b} bits'}"
                     for b, n in card.bits)
    d = card.distillation
    if d.kd:
        train = (f"{d.epochs:g} epochs distilled from {card.teacher} ({card.teacher_source}; teacher test "
                 f"accuracy {pct(card.teacher_accuracy)}), temperature {d.temperature:g}, alpha {d.alpha:g}")
    else:
        train = f"{d.epochs:g} epochs, no distillation"
    ta = card.trained_at
    if ta and ta.proxy_side != ta.own_side:
        train += (f", at {ta.proxy_side} px (test accuracy there {pct(ta.proxy_side_test_accuracy)}); then moved to "
                  f"its own {ta.own_side} px, the network that was priced and is shipped: "
                  f"{ta.own_side_epochs:g} epoch(s) of fine-tuning and batch-norm statistics re-estimated")
    t = card.training_seconds
    size = (f"{(card.macs or 0) / 1e6:.1f}M MACs, {(card.params or 0) / 1e6:.3f}M parameters, "
            f"{(card.bytes or 0) / 1e6:.3f} MB")
    lines = [
        f"# Model card: trial {card.trial} (--pick {card.pick})",
        "",
        f"`{card.candidate}`",
        "",
        *([f"_The same trial as `{card.copied_from}/`, trained with the same recipe: its files, copied, "
           f"not retrained._", ""] if card.copied_from else []),
        *([f"_One network for {len(card.serves)} devices: the winner on {', '.join(card.serves)} (trained once; "
           f"each device's folder holds it with that device's predicted latency)._", ""]
          if len(card.serves) > 1 else []),
        f"**Ship {card.ship}.**",
        "",
        *([f"_{host_line(card)}._", ""] if host_line(card) else []),
        f"- Device: {card.device_summary}.",
        f"- Predicted latency: **{card.predicted_latency_ms:.3f} ms** ({card.provenance}), budget "
        f"{card.latency_budget_ms:.3f} ms ({card.latency_budget_source}); {card.latency_note}.",
        f"- Test accuracy: fp32 {pct(card.test_accuracy_fp32)}, int8 {pct(card.test_accuracy_int8)} (measured "
        f"with the exported files in onnxruntime; search proxy {pct(card.proxy_accuracy)}).",
        f"- Size: {size} at its bit widths ({bits}); hidden channels kept {card.keep}.",
    ]
    tfl = card.tflite
    if tfl.written:
        acc = "; ".join(f"{k}: test accuracy {pct(a)}, {ms:.3f} ms{_predicted(pred, ms)}"
                        for k, a, ms, pred in (("fp32", tfl.test_accuracy_fp32, tfl.host_latency_fp32_ms,
                                                tfl.predicted_fp32_ms),
                                               ("int8", tfl.test_accuracy_int8, tfl.host_latency_int8_ms,
                                                tfl.predicted_int8_ms))
                        if ms is not None)
        lines.append(f"- LiteRT (`model.tflite`, `model.int8.tflite`) {acc} ({tfl.note}).")
        if tfl.predicted_label and (tfl.predicted_fp32_ms is not None or tfl.predicted_int8_ms is not None):
            lines.append(f"- LiteRT predicted against measured on this host: the predictions are {tfl.predicted_label}'s "
                         f"(ops timed alone in the same interpreter), the measurements the files themselves.")
        elif tfl.predicted_note:
            lines.append(f"- LiteRT prediction: {tfl.predicted_note}.")
    elif tfl.note:
        lines.append(f"- LiteRT: not exported ({tfl.note}).")
    for err in tfl.errors:
        lines.append(f"- LiteRT export failed: {err}")
    pte = card.pte
    if pte.written:
        acc = "; ".join(f"{k}: test accuracy {pct(a)}, {ms:.3f} ms"
                        for k, a, ms in (("fp32", pte.test_accuracy_fp32, pte.host_latency_fp32_ms),
                                         ("int8", pte.test_accuracy_int8, pte.host_latency_int8_ms))
                        if ms is not None)
        lines.append(f"- ExecuTorch (`{'`, `'.join(pte.files)}`) {acc} ({pte.note}).")
    for err in pte.errors:
        lines.append(f"- ExecuTorch export failed: {err}")
    mem = card.memory
    if mem:
        lines.append(f"- Peak memory at batch 1: {mem.at_bit_widths / 1024:.0f} KB at its bit widths, "
                     f"{mem.fp32_file / 1024:.0f} KB for model.onnx (float): largest live activations "
                     f"plus weights, computed from its operators.")
    if h:
        lines.append(f"- This host ({h.label}): fp32 {h.measured_fp32:.3f} ms measured (predicted "
                     f"{h.predicted_fp32:.3f}), int8 {h.measured_int8:.3f} ms (predicted {h.predicted_int8:.3f}). "
                     f"{h.note}.")
    lines += [
        f"- Input: {list(inp.shape)} {inp.dtype} {inp.layout}: {inp.channels_text} image resized to {inp.resize}; "
        f"{inp.normalisation} (mean {list(inp.mean)}, std {list(inp.std)}). From the search's dataset: "
        f"`nas.load_dataset(...).test_arrays(resolution={inp.side})`.",
        f"- Classes (output index: name): {', '.join(f'{i}: {n}' for i, n in enumerate(card.class_names))}.",
        *([f"- Start: {ta.start}."] if ta else []),
        f"- Training: {train}; {t.total:.0f} s on {d.trained_on}. Data: {card.dataset}.",
        "",
        "Classify images with model.onnx (`python classify.py photo.png [more.png ...]`, run in this folder; "
        "one class name per file):",
        "",
        "```python",
        card.python_snippet,
        "```",
        "",
    ]
    lite = card.litert_snippet
    if lite is not None:
        lines += [
            f"The same with model.tflite (`pip install ai-edge-litert`; its input is {tfl.fp32_input_layout}, "
            f"{list(tfl.fp32_input_shape or ())}, as read from the file):",
            "",
            "```python",
            lite,
            "```",
            "",
        ]
    lines += ["Files: " + "; ".join(f"`{k}`: {v}" for k, v in card.files.items()), ""]
    return "\n".join(lines)
