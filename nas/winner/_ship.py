"""The formats a phone runs, for a trained winner: the LiteRT part of ``nas distill`` and
``nas export RUN`` (re-export an existing run's winner from its ``model.pt``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from nas.errors import ExportError, NasError
from nas.export import _litert as litert
from nas.winner._card import card_markdown

__all__ = ["FORMATS", "parse_formats", "tflite_section", "export_run", "calibration_images"]

FORMATS = ("onnx", "tflite")
Progress = Callable[[str, int, int], None]


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


def tflite_section(float_model, out_dir: Path, shape: list[int], calib: np.ndarray, xt: np.ndarray,
                   yt: np.ndarray, progress: Progress | None = None, seed: int = 0) -> dict:
    """Write model.tflite and model.int8.tflite; their test accuracy in the LiteRT interpreter
    and their host latency (XNNPACK, 1 thread). Without the extra, or when the converter
    fails, a dict that says so (the ONNX files are already written and stay)."""
    if not litert.available():
        return {"written": False, "note": litert.INSTALL_HINT}
    out: dict = {"written": True, "files": {}}
    for i, (name, int8) in enumerate((("model.tflite", False), ("model.int8.tflite", True))):
        if progress:
            progress("exporting LiteRT fp32 and int8", i, 2)
        try:
            litert.export_tflite(float_model, out_dir / name, shape, int8=int8, calibration=calib if int8 else None,
                                 seed=seed)
        except ExportError as exc:
            out.setdefault("errors", []).append(str(exc))
            continue
        kind = "fp32" if not int8 else "int8"
        out["files"][name] = ("fp32, input float32 NCHW as model.onnx" if not int8 else
                              f"PT2E static int8 calibrated on {len(calib)} training images; int8 input and "
                              f"output (scale and zero point under tflite.io_int8); blocks below 8 bits run at 8")
        out[f"test_accuracy_{kind}"] = litert.tflite_accuracy(out_dir / name, xt, yt)
        out[f"host_latency_{kind}_ms"] = litert.tflite_latency(out_dir / name)
        if int8:
            out["io_int8"] = litert.tflite_io(out_dir / name)
    if progress:
        progress("exporting LiteRT fp32 and int8", 2, 2)
    out["written"] = bool(out["files"])
    out["note"] = ("accuracy measured in the LiteRT interpreter, one image per call; host latency: median of "
                   "repeated calls, XNNPACK, 1 thread, on this machine")
    return out


def export_run(run_dir: str | Path, folder: str = "winner", formats: tuple[str, ...] = FORMATS,
               progress: Progress | None = None, allow_changed: bool = False) -> dict:
    """Re-export ``run_dir/folder``'s trained winner (its model.pt) in ``formats``; update its
    card. Returns the card. The run's data must be unchanged unless ``allow_changed``; a
    ``cifar10`` run whose cache is gone fails, it never downloads."""
    from nas.export import export_onnx, onnx_accuracy
    from nas.run import RunFolder, open_run, read_run_config
    from nas.train import load_checkpoint

    read_run_config(run_dir)  # a folder that is not a run is refused before its lock file is made
    with RunFolder(run_dir) as run:  # the lock first: a run another process holds is "in use by pid N"
        ctx = open_run(run_dir, allow_changed=allow_changed, download=False)
        out_dir = ctx.run_dir / folder
        card_path = out_dir / "card.json"
        if not card_path.is_file() or not (out_dir / "model.pt").is_file():
            raise NasError(f"{out_dir} holds no trained winner (model.pt and card.json): run `nas distill "
                           f"{ctx.run_dir}` first")
        if "tflite" in formats:
            litert.require()
        card = json.loads(card_path.read_text())
        model, blob = load_checkpoint(out_dir / "model.pt", ctx.space)
        res = int(blob["resolution"])
        data = ctx.dataset.at_resolution(res)
        xt, yt = data.test_arrays()
        n_calib = int(card.get("calibration_images", 256))
        calib = calibration_images(data, n_calib, ctx.config.seed)
        shape = [1, data.in_channels, res, res]
        if "onnx" in formats:
            export_onnx(model, out_dir / "model.onnx", resolution=res)
            export_onnx(model, out_dir / "model.int8.onnx", resolution=res, int8=True, calibration=calib)
            card["test_accuracy_fp32"] = onnx_accuracy(out_dir / "model.onnx", xt, yt)
            card["test_accuracy_int8"] = onnx_accuracy(out_dir / "model.int8.onnx", xt, yt)
        if "tflite" in formats:
            card["tflite"] = tflite_section(model, out_dir, shape, calib, xt, yt, progress, ctx.config.seed)
            card["files"].update(card["tflite"].get("files", {}))
        run.write(f"{folder}/card.json", json.dumps(card, indent=1))
        run.write(f"{folder}/card.md", card_markdown(card))
        run.log(f"{folder} re-exported as {', '.join(formats)}")
    return card
