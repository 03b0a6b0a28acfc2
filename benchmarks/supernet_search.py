"""The supernet search against the short-proxy search and the budget's reference network.

    python benchmarks/supernet_search.py --seeds 0 [--data builtin] [--runs DIR]

Per seed, with everything at its defaults (pixel7, mobilenetv3, budget = MobileNetV3-Small
1.0's predicted latency, 40 trials, 2 workers, the default winner recipe):
1. ``nas search --device pixel7 --proxy supernet`` end to end (search + winner + exports), run
   as the CLI (a subprocess, timed: the default command's wall time with that proxy);
2. the same with ``--proxy train``;
3. the reference (MobileNetV3-Small 1.0 at 224) trained with each arm's final recipe: from the
   supernet run, started from the weights it inherits with the DistillConfig defaults (the
   supernet winner's recipe: no distillation; ``recipe`` kd=True distils from the supernet's
   largest member); and from scratch (the short-proxy winner's recipe);
   own-side fine-tuning as the winners; exported to ONNX fp32 and scored on the test split in
   onnxruntime, as the winners' cards score theirs.
Winners' figures come from their card.json (ONNX fp32 test accuracy, predicted latency).
Results: benchmarks/results/supernet_search_<data>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, portable  # noqa: E402

REFERENCE = ("mobilenetv3", "mobilenet_v3_small_1.0_224")


def run_cli(args: list[str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    return time.perf_counter() - t0, p.returncode, (p.stdout + p.stderr)[-3000:]


def train_reference(run_dir: Path, inherit: bool, seed: int, **recipe) -> dict:
    """The reference trained with a run's final recipe, exported to ONNX, scored on test.
    ``recipe``: DistillConfig fields that differ from the defaults (lr, epochs...)."""
    import torch

    import nas
    from nas.export import export_onnx, onnx_accuracy_batches
    from nas.models import strip_fake_quant
    from nas.run import open_run
    from nas.winner._distill import (
        DistillConfig,
        _inheritance,
        _supernet_teacher,
        _to_own_side,
        _train,
    )

    ctx = open_run(run_dir)
    cfg = DistillConfig(seed=seed, **recipe)
    ref = nas.load_space(REFERENCE[0]).reference(REFERENCE[1])
    side = ctx.proxy_side(ref)
    data = ctx.dataset.at_resolution(side)
    torch.set_num_threads(cfg.threads)
    teacher, state, how = None, None, "from scratch"
    t0 = time.perf_counter()
    if inherit:
        inh = _inheritance(run_dir, ctx.space, data.num_classes, data.in_channels, cfg)
        assert inh is not None, f"{run_dir} has no supernet"
        state = inh.net.extract(ref, side).state_dict()
        how = f"inherited from supernet {inh.digest}"
        if cfg.kd and cfg.teacher != "none":
            teacher, _ = _supernet_teacher(inh, ctx.proxy_side(inh.largest), data, cfg)
            how += f", distilled from {inh.largest.key}"
    model, _ = _train(ref, data, cfg.epochs, cfg, teacher=teacher, state=state, continued=False)
    own = ctx.dataset.at_resolution(ref.resolution)
    model, _ = _to_own_side(ref, model, own, cfg, None)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(strip_fake_quant(model).eval().cpu(), Path(tmp) / "ref.onnx", resolution=ref.resolution)
        acc = onnx_accuracy_batches(path, own.eval_batches("test"))
    return {"key": ref.key, "recipe": how, "test_accuracy_fp32": acc, "seconds": time.perf_counter() - t0,
            "predicted_latency_ms": ctx.latency_ms(ref)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--data", default="builtin")
    ap.add_argument("--runs", default=str(Path(tempfile.gettempdir()) / "hwnas-bench-supernet-search"))
    ap.add_argument("--arms", default="supernet,train,reference")
    ap.add_argument("--tag", default="", help="results file suffix (arms run by separate processes)")
    ap.add_argument("--extra", default="", help="more nas search options for both arms (quoted)")
    args = ap.parse_args()
    tag = "builtin" if args.data == "builtin" else Path(args.data).stem
    out = HERE / "results" / f"supernet_search_{tag}{'_' + args.tag if args.tag else ''}.json"
    res = json.loads(out.read_text()) if out.exists() else {}
    res["machine"] = machine()
    runs = Path(args.runs)

    def save():
        out.parent.mkdir(exist_ok=True)
        out.write_text(portable(json.dumps(res, indent=1)))

    for seed in [int(s) for s in args.seeds.split(",")]:
        row = res.setdefault(str(seed), {})
        for arm in ("supernet", "train"):
            if arm not in args.arms or arm in row:
                continue
            name = f"{arm}-s{seed}"
            secs, rc, tail = run_cli(["search", "--device", "pixel7", "--proxy", arm, "--seed", str(seed),
                                      "--data", args.data, "--out", str(runs), "--name", name,
                                      *args.extra.split()])
            card_path = runs / name / "winner" / "card.json"
            card = json.loads(card_path.read_text()) if card_path.exists() else {}
            log = (runs / name / "search.log").read_text() if (runs / name / "search.log").exists() else ""
            row[arm] = {"wall_seconds": secs, "exit": rc, "winner": card.get("candidate"),
                        "test_accuracy_fp32": card.get("test_accuracy_fp32"),
                        "test_accuracy_int8": card.get("test_accuracy_int8"),
                        "predicted_latency_ms": card.get("predicted_latency_ms"),
                        "budget_ms": card.get("latency_budget_ms"), "start": (card.get("trained_at") or {}).get("start"),
                        "search_log_tail": log.splitlines()[-3:], "output_tail": tail if rc else ""}
            save()
            print(seed, arm, json.dumps(row[arm], indent=1), flush=True)
        if "reference" in args.arms:
            for recipe, arm in (("reference_inherited", "supernet"), ("reference_scratch", "train")):
                run = runs / f"{arm}-s{seed}"
                if recipe in row or not (run / "winner" / "card.json").exists():
                    continue  # its arm's run is not finished (winner exported) yet
                row[recipe] = train_reference(runs / f"{arm}-s{seed}", recipe.endswith("inherited"), seed)
                save()
                print(seed, recipe, row[recipe], flush=True)
    summarize(res)
    save()


def summarize(res: dict) -> None:
    lines = []
    for seed, row in sorted((k, v) for k, v in res.items() if k.isdigit()):
        def acc(k):
            v = (row.get(k) or {}).get("test_accuracy_fp32")
            return float("nan") if v is None else 100 * v
        sn, tr = acc("supernet"), acc("train")
        ri, rs = acc("reference_inherited"), acc("reference_scratch")
        lines.append(f"seed {seed}: supernet winner {sn:.2f}%, short-proxy winner {tr:.2f}%, reference "
                     f"{ri:.2f}% (inherited recipe) / {rs:.2f}% (scratch recipe); supernet - reference "
                     f"{sn - ri:+.2f} / {sn - rs:+.2f}, supernet - short proxy {sn - tr:+.2f}")
        for arm in ("supernet", "train"):
            r = row.get(arm) or {}
            if r.get("predicted_latency_ms") and r.get("budget_ms"):
                lines.append(f"  {arm}: {r['wall_seconds'] / 60:.1f} min, exit {r['exit']}, winner "
                             f"{r['predicted_latency_ms']:.3f} ms = {r['predicted_latency_ms'] / r['budget_ms']:.2f}"
                             f" of the budget")
    res["summary"] = lines
    print("\n".join(lines))


if __name__ == "__main__":
    main()
