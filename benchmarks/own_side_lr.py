"""The winner's move to its own input side: fine-tuning learning rate and epochs.

    python benchmarks/own_side_lr.py RUN_DIR [--trials best 3 27] [--variants 0.01:1 0.05:1 0.01:2 0.03:2]

For each picked trial of an existing run (``best`` or a trial number), `nas distill` trains it
at the proxy side (5 epochs, from scratch, seed of the run), moves it to its own side and
fine-tunes there with each (learning rate : epochs) variant; reported is the exported ONNX
files' test accuracy at the own side, next to the same weights' accuracy at the proxy side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, portable, table  # noqa: E402

from nas.winner import DistillConfig, distill_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--trials", nargs="+", default=["best"])
    ap.add_argument("--variants", nargs="+", default=["0.01:1", "0.05:1"])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/own_side_lr.json"))
    args = ap.parse_args()
    print(f"Measured on: {machine()}\n")
    rows, results = [], []
    for trial in args.trials:
        pick = "best" if trial == "best" else f"trial={trial}"
        for v in args.variants:
            lr, epochs = (float(x) for x in v.split(":"))
            t = time.perf_counter()
            c = distill_run(args.run, DistillConfig(pick=pick, out=f"winners/own-{trial}-{lr}-{epochs:g}", force=True,
                                                    measure_host=False, tflite=False, own_side_lr=lr,
                                                    own_side_epochs=epochs))
            ta = c["trained_at"]
            r = {"trial": c["trial"], "key": c["candidate"], "lr": lr, "epochs": epochs, "sides": [ta["proxy_side"], ta["own_side"]],
                 "proxy_side_acc": ta["proxy_side_test_accuracy"], "fp32": c["test_accuracy_fp32"],
                 "int8": c["test_accuracy_int8"], "seconds": round(time.perf_counter() - t, 1)}
            results.append(r)
            rows.append([r["trial"], f"{r['sides'][0]} -> {r['sides'][1]} px", f"{lr:g}", f"{epochs:g}",
                         f"{r['proxy_side_acc'] * 100:.1f}%", f"{r['fp32'] * 100:.1f}%", f"{r['int8'] * 100:.1f}%",
                         f"{r['seconds']:.0f}"])
    print(table(["trial", "move", "own-side lr", "epochs", "at proxy side", "own side fp32", "own side int8",
                 "winner s"], rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(portable(json.dumps({"machine": machine(), "run": str(args.run), "results": results},
                                            indent=1)))


if __name__ == "__main__":
    main()
