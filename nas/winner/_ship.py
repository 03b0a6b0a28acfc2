"""The formats a phone runs, for a trained winner: the LiteRT part of ``nas distill`` and
``nas export RUN`` (re-export an existing run's winner from its ``model.pt``), which also writes
ExecuTorch's .pte files (``--format pte``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from nas.errors import ExportError, NasError
from nas.export import executorch, litert
from nas.latency import ROUNDS, RUNS, YARDSTICK_STAT, time_interleaved
from nas.space import Candidate
from nas.winner._card import PteSection, TfliteSection, WinnerCard
from nas.winner._pick import device_of_folder, rule_of_folder

__all__ = ["FORMATS", "DEFAULT_FORMATS", "parse_formats", "tflite_section", "pte_section", "export_run",
           "calibration_images"]

FORMATS = ("onnx", "tflite", "pte")
DEFAULT_FORMATS = ("onnx", "tflite")  # what `nas export RUN` writes unless --format says otherwise
Progress = Callable[[str, int, int], None]
TestBatches = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]  # a fresh pass over the test split


def parse_formats(text: str) -> tuple[str, ...]:
    out = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise NasError(f"--format {text!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return out


def calibration_images(data, n: int, seed: int) -> np.ndarray:
    """The training images int8 files are calibrated on (the same for ONNX and LiteRT)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data.x_train), size=min(n, len(data.x_train)), replace=False)
    return data.normalize(data.x_train[np.sort(idx)])


def tflite_section(float_model, out_dir: Path, shape: list[int], calib: np.ndarray, test: TestBatches,
                   progress: Progress | None = None, seed: int = 0, cand: Candidate | None = None,
                   num_classes: int | None = None) -> TfliteSection:
    """Write model.tflite and model.int8.tflite; their test accuracy in the LiteRT interpreter
    (``test()``: the test split's batches, e.g. ``lambda: data.eval_batches("test")``, read once
    per file), their host latency (XNNPACK, 1 thread) and model.tflite's input layout as read
    from the file; with ``cand`` (the network the files hold) and ``num_classes``, the
    host-litert profile's prediction of both files beside their measurement (its ops not yet in
    its cache are timed first). Without the extra, or when the converter fails, a section that
    says so (the ONNX files are already written and stay)."""
    if not litert.available():
        return TfliteSection(written=False, note=litert.INSTALL_HINT)
    files: dict[str, str] = {}
    errors: list[str] = []
    facts: dict = {}
    for i, (name, int8) in enumerate((("model.tflite", False), ("model.int8.tflite", True))):
        if progress:
            progress("exporting LiteRT fp32 and int8", i, 2)
        try:
            litert.export_tflite(float_model, out_dir / name, shape, int8=int8, calibration=calib if int8 else None,
                                 seed=seed)
        except ExportError as exc:
            errors.append(str(exc))
            continue
        kind = "fp32" if not int8 else "int8"
        io = litert.tflite_io(out_dir / name)
        files[name] = (f"fp32, input float32 {_layout(io['input']['shape'], shape)} {io['input']['shape']}"
                       if not int8 else
                       f"PT2E static int8 calibrated on {len(calib)} training images; int8 input and "
                       f"output (scale and zero point under tflite.io_int8); blocks below 8 bits run at 8")
        facts[f"test_accuracy_{kind}"] = litert.tflite_accuracy_batches(out_dir / name, test())
        if int8:
            facts["io_int8"] = io
        else:
            facts["fp32_input_shape"] = tuple(io["input"]["shape"])
            facts["fp32_input_layout"] = _layout(io["input"]["shape"], shape)
    if progress:
        progress("exporting LiteRT fp32 and int8", 2, 2)
    # both files timed together with the yardstick the host-litert profile is calibrated and
    # validated against (interleaved rounds), so its prediction and the timing are comparable
    timed = [(kind, n) for kind, n in (("fp32", "model.tflite"), ("int8", "model.int8.tflite")) if n in files]
    if timed:
        stats = time_interleaved([litert.tflite_runner(out_dir / n) for _, n in timed])
        for (kind, _), st in zip(timed, stats):
            facts[f"host_latency_{kind}_ms"] = st[YARDSTICK_STAT]
    if files and cand is not None and num_classes is not None:
        facts.update(_host_litert_prediction(cand, num_classes, shape[1], progress))
    return TfliteSection(written=bool(files), files=files, errors=tuple(errors),
                         note=f"accuracy measured in the LiteRT interpreter, one image per call; host latency: "
                              f"{YARDSTICK_STAT.replace('_', ' ')} of {ROUNDS} interleaved rounds of {RUNS} calls, "
                              f"XNNPACK, 1 thread, on this machine", **facts)


def _host_litert_prediction(cand: Candidate, num_classes: int, in_channels: int,
                            progress: Progress | None) -> dict:
    """The host-litert profile's price of ``cand`` in fp32 and int8, for the card's
    predicted-against-measured line; a note instead when it cannot price it."""
    from nas.latency import load_device

    try:
        prof = load_device("host-litert")
        if progress:
            progress("pricing the .tflite files with host-litert (timing its missing ops)", 0, 1)
        f32 = prof.latency_ms(cand.replace_bits(32), num_classes, in_channels)
        i8 = prof.latency_ms(cand.replace_bits(8), num_classes, in_channels)
    except NasError as exc:
        return {"predicted_note": f"host-litert could not price this network ({exc})"}
    finally:
        if progress:
            progress("pricing the .tflite files with host-litert (timing its missing ops)", 1, 1)
    return {"predicted_label": prof.label, "predicted_fp32_ms": f32, "predicted_int8_ms": i8}


def pte_section(float_model, out_dir: Path, shape: list[int], calib: np.ndarray, test: TestBatches,
                progress: Progress | None = None, seed: int = 0) -> PteSection:
    """Write model.pte and model.int8.pte (XNNPACK-delegated); their test accuracy in
    ExecuTorch's runtime (``test()`` read once per file) and their host latency. Without the
    extra, or when export fails, a section that says so (the other files stay)."""
    if not executorch.available():
        return PteSection(written=False, note=executorch.INSTALL_HINT)
    files: dict[str, str] = {}
    errors: list[str] = []
    facts: dict = {}
    for i, (name, int8) in enumerate((("model.pte", False), ("model.int8.pte", True))):
        if progress:
            progress("exporting ExecuTorch fp32 and int8", i, 2)
        try:
            executorch.export_pte(float_model, out_dir / name, shape, int8=int8,
                                  calibration=calib if int8 else None, seed=seed)
        except ExportError as exc:
            errors.append(str(exc))
            continue
        kind = "fp32" if not int8 else "int8"
        files[name] = (f"ExecuTorch fp32, XNNPACK-delegated, input float32 NCHW {list(shape)}" if not int8 else
                       f"ExecuTorch PT2E static int8 (XNNPACK quantizer, per-channel weights) calibrated on "
                       f"{len(calib)} training images, XNNPACK-delegated; float32 NCHW input and output; "
                       f"blocks below 8 bits run at 8")
        facts[f"test_accuracy_{kind}"] = executorch.pte_accuracy_batches(out_dir / name, test())
        facts[f"host_latency_{kind}_ms"] = executorch.pte_latency(out_dir / name, shape)
    if progress:
        progress("exporting ExecuTorch fp32 and int8", 2, 2)
    n = executorch.runtime_threads()
    threads = "the runtime's default threads" if n is None else f"{n} thread" + ("s" if n != 1 else "")
    return PteSection(written=bool(files), files=files, errors=tuple(errors),
                      executorch_version=_version("executorch"),
                      note="accuracy measured in ExecuTorch's runtime, one image per call; host latency: median of "
                           f"repeated calls, XNNPACK, {threads}, on this machine",
                      **facts)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _layout(file_shape: list[int], nchw: list[int]) -> str:
    """"NCHW" or "NHWC": how a .tflite file's input shape holds the model's [1, C, H, W] input."""
    n, c, h, w = nchw
    if list(file_shape) == [n, c, h, w]:
        return "NCHW"
    if list(file_shape) == [n, h, w, c]:
        return "NHWC"
    raise ExportError(f"the .tflite input shape {list(file_shape)} is neither NCHW nor NHWC of {nchw}")


def _no_winner(run_dir: Path, folder: str, out_dir: Path) -> str:
    """Why ``nas export`` cannot re-export ``folder``, and the ``nas distill`` that makes it."""
    rule = rule_of_folder(folder)
    if rule is not None and "<" in rule:
        rule = f"'{rule}'"  # quoted for the shell
    device = device_of_folder(folder)
    cmd = f"nas distill {run_dir}" + (f" --device {device}" if device else "") + \
        (f" --pick {rule}" if rule not in (None, "best") else "") + (f" --out {folder}" if rule is None else "")
    if (out_dir / "model.pt").is_file():  # model.pt is written first: a distill stopped before its card
        return (f"{out_dir} has a model.pt but no card.json (a nas distill stopped before it finished): "
                f"run `{cmd} --force`")
    return f"{out_dir} holds no trained winner (no model.pt and card.json): run `{cmd}` first"


def export_run(run_dir: str | Path, folder: str = "winner", formats: tuple[str, ...] = DEFAULT_FORMATS,
               progress: Progress | None = None, allow_changed: bool = False) -> WinnerCard:
    """Re-export ``run_dir/folder``'s trained winner (its model.pt) in ``formats``; update its
    card (its accuracies; the advice derived from them is computed when the card is rendered).
    Returns the card. The run's data must be unchanged unless ``allow_changed``; a ``cifar10``
    run whose cache is gone fails, it never downloads."""
    from nas.export import export_onnx, onnx_accuracy_batches
    from nas.run import RunFolder, open_run, read_run_config
    from nas.train import load_checkpoint

    read_run_config(run_dir)  # a folder that is not a run is refused before its lock file is made
    with RunFolder(run_dir) as run:  # the lock first: a run another process holds is "in use by pid N"
        ctx = open_run(run_dir, allow_changed=allow_changed, download=False)
        out_dir = ctx.run_dir / folder
        card_path = out_dir / "card.json"
        if not card_path.is_file() or not (out_dir / "model.pt").is_file():
            raise NasError(_no_winner(ctx.run_dir, folder, out_dir))
        if "tflite" in formats:
            litert.require()
        if "pte" in formats:
            executorch.require()
        card = WinnerCard.load(card_path)
        model, blob = load_checkpoint(out_dir / "model.pt", ctx.space)
        res = int(blob["resolution"])
        data = ctx.dataset.at_resolution(res)
        # the images and seed distillation calibrated on (a DistillConfig.seed other than the run's
        # drew other images: re-quantized on the run's, the int8 files changed)
        seed = ctx.config.seed if card.calibration_seed is None else card.calibration_seed
        calib = calibration_images(data, card.calibration_images, seed)
        shape = [1, data.in_channels, res, res]
        if "onnx" in formats:
            export_onnx(model, out_dir / "model.onnx", resolution=res)
            export_onnx(model, out_dir / "model.int8.onnx", resolution=res, int8=True, calibration=calib)
            card = replace(card,
                           test_accuracy_fp32=onnx_accuracy_batches(out_dir / "model.onnx", data.eval_batches("test")),
                           test_accuracy_int8=onnx_accuracy_batches(out_dir / "model.int8.onnx",
                                                                    data.eval_batches("test")))
        if "tflite" in formats:
            tfl = tflite_section(model, out_dir, shape, calib, lambda: data.eval_batches("test"), progress,
                                 seed, num_classes=card.num_classes,
                                 # priced on host-litert when distillation measured the host, as it does
                                 cand=ctx.space.parse(card.candidate) if card.host_latency_ms else None)
            card = replace(card, tflite=tfl, files={**card.files, **tfl.files})
        if "pte" in formats:
            pte = pte_section(model, out_dir, shape, calib, lambda: data.eval_batches("test"), progress, seed)
            card = replace(card, pte=pte, files={**card.files, **pte.files})
        run.write(f"{folder}/card.json", card.to_json())
        run.write(f"{folder}/card.md", card.markdown())
        run.log(f"{folder} re-exported as {', '.join(formats)}")
    return card
