"""Issue 6: the winner against its own no-KD schedule, int8 against fp32, and the searched
winners against reference networks at no more predicted pixel7 latency.

1. One search on the CIFAR-10 subset (mobilenetv3, pixel7, budget = the slowest reference
   below, default proxy, 2 Ray workers).
2. For each reference (MobileNetV3-Small 1.0, MobileNetV2 0.5 and 0.35, ShuffleNetV2 0.5x; all
   at 224 on the device), the winner `--pick latency<=<reference latency>` is distilled and
   exported (nas.winner._distill.distill_run: KD from the space's largest float candidate, 5 epochs,
   its bit widths, fp32 + int8 ONNX, test accuracy in onnxruntime).
3. Each reference is trained with the same recipe (same teacher, epochs, seed; float) and
   scored on the same test split.
4. The first winner is trained again without KD (same schedule): the distillation gain.

    python benchmarks/winner.py [--trials 30] [--epochs 5] [--out benchmarks/results/winner.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, portable, table  # noqa: E402

CIFAR = HERE.parent.parent / "shared" / "data" / "cifar10_subset_10k_2k.npz"
REFERENCES = [("mobilenetv3", "mobilenet_v3_small_1.0_224"), ("mobilenetv2", "mobilenet_v2_0.5_224"),
              ("mobilenetv2", "mobilenet_v2_0.35_224"), ("shufflenetv2", "shufflenet_v2_x0.5_224")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--epochs", type=float, default=5.0)
    ap.add_argument("--teacher-epochs", type=float, default=2.0)
    ap.add_argument("--runs", default=str(Path(tempfile.gettempdir()) / "hwnas-bench-winner"))
    ap.add_argument("--out", default=str(HERE / "results" / "winner.json"))
    args = ap.parse_args()

    import torch

    import nas
    from nas.train import proxy_resolution
    from nas.winner._distill import DistillConfig, _accuracy, _teacher, _train, distill_run

    out, res, run_dir, refs, data = start(args)
    base = DistillConfig(epochs=args.epochs, teacher_epochs=args.teacher_epochs, threads=2, seed=0, kd=True)
    res.setdefault("winners", {})
    for ref, cand, lat in refs:
        if ref in res["winners"]:
            continue
        card = distill_run(run_dir, DistillConfig(**{**base.__dict__, "pick": f"latency<={lat}",
                                                     "out": f"winner-{ref}"}))
        res["winners"][ref] = card.to_dict()
        out.write_text(portable(json.dumps(res, indent=1)))
        print(f"winner at <= {lat:.3f} ms ({ref}): test fp32 {card.test_accuracy_fp32:.4f} "
              f"int8 {card.test_accuracy_int8:.4f} (trial {card.trial}, {card.predicted_latency_ms:.3f} ms)",
              flush=True)
    res.setdefault("references", {})
    torch.set_num_threads(2)
    for ref, cand, lat in refs:
        if ref in res["references"]:
            continue
        side = proxy_resolution(cand, data.resolution)
        d = data.at_resolution(side)
        teacher, tinfo = _teacher(nas.load_space("mobilenetv3"), d, base, run_dir / "teachers", None)
        model, secs = _train(cand, d, args.epochs, base, teacher=teacher, quantize=False)
        xt, yt = d.test_arrays()
        res["references"][ref] = {"key": cand.key, "latency_ms": lat, "test_accuracy": _accuracy(model, xt, yt),
                                  "seconds": secs, "teacher": tinfo["key"]}
        out.write_text(portable(json.dumps(res, indent=1)))
        print(f"reference {ref}: test {res['references'][ref]['test_accuracy']:.4f} at {lat:.3f} ms", flush=True)
    first = REFERENCES[0][1]
    if "no_kd" not in res:
        lat = next(lat for r, _, lat in refs if r == first)
        card = distill_run(run_dir, DistillConfig(**{**base.__dict__, "pick": f"latency<={lat}", "kd": False,
                                                     "measure_host": False, "out": "winner-no-kd"}))
        res["no_kd"] = card.to_dict()
        out.write_text(portable(json.dumps(res, indent=1)))
    summarize(res)


def start(args):
    """Quiet logs, load the results file so far, and run or reuse the search:
    (results path, results dict, run folder, references, dataset)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray").setLevel(logging.ERROR)
    out = Path(args.out)
    res = json.loads(out.read_text()) if out.exists() else {}
    res["machine"] = machine()
    run_dir, refs, data, info = prepare(args.runs, args.trials)
    if info:
        res["search"] = info
        out.write_text(portable(json.dumps(res, indent=1)))
    return out, res, run_dir, refs, data


def prepare(runs: str, trials: int):
    """The benchmark's CIFAR search (run once, reused after): (run folder, references as
    (name, candidate, pixel7 ms), dataset, search figures or None when reused)."""
    import nas
    from nas.api import run_search
    from nas.data import load_dataset
    from nas.latency import load_device
    from nas.run import SearchConfig

    pixel7 = load_device("pixel7")
    data = load_dataset(str(CIFAR))
    refs = []
    for space_name, ref in REFERENCES:
        cand = nas.load_space(space_name).reference(ref)
        refs.append((ref, cand, pixel7.latency_ms(cand, num_classes=data.num_classes)))
    budget = max(lat for _, _, lat in refs)
    run_dir = Path(runs) / "cifar"
    info = None
    if not (run_dir / "config.yaml").exists():
        t0 = time.perf_counter()
        r = run_search(SearchConfig(device="pixel7", space="mobilenetv3", data=str(CIFAR), trials=trials,
                                    workers=2, latency_ms=budget, out=runs, name="cifar", references=0,
                                    distill=False, proxy_kind="train"))
        info = {"trials": trials, "budget_ms": budget, "seconds": time.perf_counter() - t0,
                "evaluated": r.evaluated, "over_budget": r.over_budget, "best_proxy": r.best_accuracy}
    return run_dir, refs, data, info


def summarize(res: dict) -> None:
    rows = []
    for ref, card in res["winners"].items():
        r = res["references"].get(ref, {})
        gain = (card["test_accuracy_fp32"] - r["test_accuracy"]) * 100 if r else float("nan")
        h = card.get("host_latency_ms") or {}
        speedup = h.get("speedup_int8", h.get("measured_fp32", math.nan) / h.get("measured_int8", math.nan))
        rows.append([ref, f"{r.get('latency_ms', float('nan')):.3f}", f"{r.get('test_accuracy', float('nan')) * 100:.2f}",
                     f"trial {card['trial']}, {card['predicted_latency_ms']:.3f}", f"{card['test_accuracy_fp32'] * 100:.2f}",
                     f"{card['test_accuracy_int8'] * 100:.2f}", f"{gain:+.2f}",
                     f"{h.get('measured_fp32', float('nan')):.2f} / {h.get('measured_int8', float('nan')):.2f} "
                     f"({speedup:.2f}x)"])
    print(table(["reference", "ref. pixel7 ms", "ref. test %", "winner (pixel7 ms)", "winner fp32 %",
                 "winner int8 %", "winner - ref (points)", "host ms fp32 / int8"], rows))
    if "no_kd" in res:
        first = next(iter(res["winners"].values()))
        print(f"KD gain: {(first['test_accuracy_fp32'] - res['no_kd']['test_accuracy_fp32']) * 100:+.2f} points "
              f"({first['test_accuracy_fp32'] * 100:.2f}% with KD, {res['no_kd']['test_accuracy_fp32'] * 100:.2f}% without)")


if __name__ == "__main__":
    main()
