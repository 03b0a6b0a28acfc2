"""The model card of a winner: which file to ship, how to feed it, and what each number was
measured on. ``card.json`` is the data (written by ``nas.winner._distill``); these functions render it."""

from __future__ import annotations

import math

__all__ = ["ship_advice", "python_snippet", "card_markdown"]


def ship_advice(card: dict) -> str:
    """Which file to ship, from the accuracies and the speeds measured on this host."""
    a32, a8 = card["test_accuracy_fp32"], card["test_accuracy_int8"]
    h = card.get("host_latency_ms") or {}
    speed = h.get("speedup_int8")
    drop = (a32 - a8) * 100
    if speed is None or not math.isfinite(speed):
        return (f"model.onnx (fp32); model.int8.onnx is {drop:+.2f} points less accurate and its speed was not "
                f"measured here: time both on the phone")
    if speed > 1.05 and drop <= 1.0:
        return (f"model.int8.onnx: {speed:.2f}x the fp32 speed on this host at {drop:.2f} points less test "
                f"accuracy")
    return (f"model.onnx (fp32): int8 ran {speed:.2f}x the fp32 speed on this host ({drop:+.2f} points), "
            f"not worth it here; time both on the phone, whose int8 kernels may differ")


def python_snippet(card: dict) -> str:
    """Ten lines that classify one image file with the shipped fp32 model (onnxruntime)."""
    c, _, s, _ = card["input"]["shape"]
    gray = c == 1
    mean = [round(m, 6) for m in card["input"]["mean"]]
    std = [round(v, 6) for v in card["input"]["std"]]
    return "\n".join([
        "import sys",
        "import numpy as np, onnxruntime as ort",
        "from PIL import Image",
        f"CLASSES = {card['class_names']!r}",
        f"img = Image.open(sys.argv[1]).convert({'L' if gray else 'RGB'!r}).resize(({s}, {s}), Image.BILINEAR)",
        "x = (np.asarray(img, np.float32) / 255)" + ("[None, None]" if gray else ".transpose(2, 0, 1)[None]"),
        f"x = (x - np.array({mean}, np.float32).reshape(1, -1, 1, 1)) / np.array({std}, np.float32).reshape(1, -1, 1, 1)",
        "logits = ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider']).run(None, {'input': x})[0]",
        "print(CLASSES[int(logits.argmax())])",
    ])


def card_markdown(card: dict) -> str:
    def pct(v):
        return "n/a" if v is None else f"{v * 100:.2f}%"

    h = card.get("host_latency_ms")
    inp = card["input"]
    bits = ", ".join(f"{n} block{'s' if int(n) != 1 else ''} at {'float32' if b == '32' else b + ' bits'}"
                     for b, n in (pair.split(":") for pair in card["bits"].split(",") if ":" in pair))
    d = card["distillation"]
    if d["kd"]:
        train = (f"{d['epochs']:g} epochs distilled from {card['teacher']} ({card['teacher_source']}; teacher test "
                 f"accuracy {pct(card['teacher_accuracy'])}), temperature {d['temperature']:g}, alpha {d['alpha']:g}")
    else:
        train = f"{d['epochs']:g} epochs, no distillation"
    ta = card.get("trained_at")
    if ta and ta["proxy_side"] != ta["own_side"]:
        train += (f", at {ta['proxy_side']} px (test accuracy there {pct(ta['proxy_side_test_accuracy'])}); then moved to "
                  f"its own {ta['own_side']} px, the network that was priced and is shipped: "
                  f"{ta['own_side_epochs']:g} epoch(s) of fine-tuning and batch-norm statistics re-estimated")
    t = card["training_seconds"]
    lines = [
        f"# Model card: trial {card['trial']} (--pick {card['pick']})",
        "",
        f"`{card['candidate']}`",
        "",
        f"**Ship {card['ship']}.**",
        "",
        f"- Device: {card['device_summary']}.",
        f"- Predicted latency: **{card['predicted_latency_ms']:.3f} ms** ({card['provenance']}), budget "
        f"{card['latency_budget_ms']:.3f} ms ({card['latency_budget_source']}); {card['latency_note']}.",
        f"- Test accuracy: fp32 {pct(card['test_accuracy_fp32'])}, int8 {pct(card['test_accuracy_int8'])} (measured "
        f"with the exported files in onnxruntime; search proxy {pct(card['proxy_accuracy'])}).",
        f"- Size: {card['macs'] / 1e6:.1f}M MACs, {card['params'] / 1e6:.3f}M parameters, {card['bytes'] / 1e6:.3f} MB "
        f"at its bit widths ({bits}); hidden channels kept {card['keep']}.",
    ]
    tfl = card.get("tflite") or {}
    if tfl.get("written"):
        acc = "; ".join(f"{k}: test accuracy {pct(tfl.get('test_accuracy_' + k))}, {tfl['host_latency_' + k + '_ms']:.3f} ms"
                        for k in ("fp32", "int8") if f"host_latency_{k}_ms" in tfl)
        lines.append(f"- LiteRT (`model.tflite`, `model.int8.tflite`) {acc} ({tfl['note']}).")
    elif tfl.get("note"):
        lines.append(f"- LiteRT: not exported ({tfl['note']}).")
    for err in tfl.get("errors", []):
        lines.append(f"- LiteRT export failed: {err}")
    mem = card.get("memory")
    if mem:
        lines.append(f"- Peak memory at batch 1: {mem['at_bit_widths'] / 1024:.0f} KB at its bit widths, "
                     f"{mem['fp32_file'] / 1024:.0f} KB for model.onnx (float): largest live activations "
                     f"plus weights, computed from its operators.")
    if h:
        lines.append(f"- This host ({h['label']}): fp32 {h['measured_fp32']:.3f} ms measured (predicted "
                     f"{h['predicted_fp32']:.3f}), int8 {h['measured_int8']:.3f} ms (predicted {h['predicted_int8']:.3f}). "
                     f"{h['note']}.")
    lines += [
        f"- Input: {inp['shape']} float32 NCHW: {inp['channels']} image resized to {inp['resize']}; "
        f"{inp['normalisation']} (mean {inp['mean']}, std {inp['std']}). From the search's dataset: "
        f"`nas.load_dataset(...).test_arrays(resolution={inp['shape'][2]})`.",
        f"- Classes (output index: name): {', '.join(f'{i}: {n}' for i, n in enumerate(card['class_names']))}.",
        f"- Training: {train}; {t['total']:.0f} s on {d.get('trained_on', 'CPU')}. Data: {card['dataset']}.",
        "",
        "Classify an image (`python classify.py photo.png`, run in this folder):",
        "",
        "```python",
        card["python_snippet"],
        "```",
        "",
        "Files: " + "; ".join(f"`{k}`: {v}" for k, v in card["files"].items()),
        "",
    ]
    return "\n".join(lines)
