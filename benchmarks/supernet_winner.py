"""Issue 26, item 4: what the supernet gives the winner, distillation on and off.

On a run folder that holds a trained supernet (``<run>/supernet/``), one winner (``--pick``, or
``--key``: the trial with that candidate key) is trained three ways, with the same epochs, seed
and own-side fine-tuning, each through ``nas.winner.distill_run`` (the real recipe: its proxy
side, then its own side, exported):

  inherit_kd   initialised from the supernet, distilled from its largest member (``--kd``)
  inherit      initialised from the supernet, no distillation (the default)
  scratch      from scratch, no distillation (``inherit=False``: the recipe of a run without a
               supernet, what the winner got before issue 26)

and the test accuracy of each one's exported files (ONNX fp32 and int8, in onnxruntime, from its
card) is printed, with the torch model's, the teacher's and the training seconds. The winners go
to ``<run>/bench-supernet-winner/<recipe>/`` (replaced on a rerun; the report does not list
them). A run without a supernet is refused, unless ``--supernet-epochs E`` trains one here first
(``nas.supernet.train_supernet`` on the run's data, saved in the run).

    python benchmarks/supernet_winner.py RUN [--key KEY | --pick best] [--epochs 5] [--seed 0] \\
        [--recipes inherit_kd,inherit,scratch] [--own-side-epochs 1] [--threads 2] \\
        [--supernet-epochs E --supernet-images N] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import portable, table  # noqa: E402

RECIPES = {  # name: DistillConfig fields
    "inherit_kd": {"kd": True},
    "inherit": {},
    "scratch": {"inherit": False},
}
FOLDER = "bench-supernet-winner"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--key", help="the winner: the trial with this candidate key")
    ap.add_argument("--pick", default="best", help="the winner by a --pick rule (when no --key)")
    ap.add_argument("--epochs", type=float, default=5.0)
    ap.add_argument("--own-side-epochs", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=0.1, help="the winner's learning rate (the default recipe's 0.1)")
    ap.add_argument("--reference", action="store_true",
                    help="also train the budget's reference (MobileNetV3-Small 1.0) with each recipe")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--supernet-epochs", type=float, help="train a supernet here when the run has none")
    ap.add_argument("--supernet-images", type=int, default=4000, help="training images per supernet epoch")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    unknown = [r for r in args.recipes.split(",") if r not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipe(s) {', '.join(unknown)}: use {', '.join(RECIPES)}")

    import torch

    from nas.run import open_run
    from nas.search import open_study, read_trials
    from nas.supernet import read_training
    from nas.winner import DistillConfig, distill_run

    torch.set_num_threads(args.threads)
    ctx = open_run(args.run, download=False)
    if read_training(args.run) is None:
        if args.supernet_epochs is None:
            raise SystemExit(f"{args.run} holds no trained supernet: give --supernet-epochs E to train one here")
        _train_supernet(ctx, args)
    record = read_training(args.run)
    pick = args.pick
    if args.key:
        rows = [t for t in read_trials(open_study(ctx.meta.study_name, ctx.meta.storage)) if t.key == args.key]
        if not rows:
            raise SystemExit(f"no trial of {args.run} has the key {args.key}")
        pick = f"trial={rows[0].number}"
    res = {"run": str(args.run), "pick": pick, "epochs": args.epochs, "lr": args.lr, "own_side_epochs": args.own_side_epochs,
           "seed": args.seed, "supernet": {k: record[k] for k in ("digest", "seed", "budget", "training")},
           "recipes": {}}
    for name in args.recipes.split(","):
        cfg = DistillConfig(pick=pick, epochs=args.epochs, own_side_epochs=args.own_side_epochs, seed=args.seed,
                            lr=args.lr, threads=args.threads, measure_host=False, tflite=False, force=True,
                            out=f"{FOLDER}/{name}-lr{args.lr:g}-e{args.epochs:g}", **RECIPES[name])
        t0 = time.perf_counter()
        card = distill_run(args.run, cfg)
        res["winner"] = card.candidate
        res["recipes"][name] = {
            "start": card.trained_at.start if card.trained_at else None, "teacher": card.teacher,
            "teacher_test_accuracy": card.teacher_accuracy, "test_accuracy_torch": card.test_accuracy_torch,
            "test_accuracy_fp32": card.test_accuracy_fp32, "test_accuracy_int8": card.test_accuracy_int8,
            "proxy_side_test_accuracy": card.trained_at.proxy_side_test_accuracy if card.trained_at else None,
            "seconds": time.perf_counter() - t0}
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {res['recipes'][name]}", file=sys.stderr, flush=True)
        if args.reference:
            from supernet_search import train_reference

            res["recipes"][name]["reference"] = train_reference(
                args.run, cfg.inherit, args.seed, lr=args.lr, epochs=args.epochs, own_side_epochs=args.own_side_epochs,
                threads=args.threads, kd=cfg.kd, **({"teacher": "none"} if cfg.teacher == "none" else {}))
            print(f"[{time.strftime('%H:%M:%S')}] reference, {name}: {res['recipes'][name]['reference']}",
                  file=sys.stderr, flush=True)
        if args.out:
            args.out.write_text(portable(json.dumps(res, indent=1)))
    summarize(res)


def _train_supernet(ctx, args) -> None:
    from nas.supernet import Supernet, SupernetBudget, save_supernet, supernet_dir, train_supernet

    budget = SupernetBudget(epochs=args.supernet_epochs, max_train_images=args.supernet_images)
    torch_seed(args.seed)
    net = Supernet(ctx.space, ctx.dataset.num_classes, ctx.dataset.in_channels)
    print(f"training a supernet ({budget}) into {supernet_dir(args.run)}", file=sys.stderr, flush=True)
    training = train_supernet(net, ctx.dataset, budget, seed=args.seed, threads=args.threads,
                              checkpoint=supernet_dir(args.run) / "checkpoint.pt")
    save_supernet(args.run, net, training, budget, seed=args.seed)


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def summarize(res: dict) -> None:
    def pct(v):
        return "-" if v is None else f"{v * 100:.2f}"

    print(f"winner {res.get('winner')} ({res['pick']}), {res['epochs']:g} epochs + {res['own_side_epochs']:g} at "
          f"its own side, seed {res['seed']}; supernet {res['supernet']['digest']}")
    rows = [[name, pct(r["test_accuracy_fp32"]), pct(r["test_accuracy_int8"]), pct(r["test_accuracy_torch"]),
             pct(r["teacher_test_accuracy"]), pct((r.get("reference") or {}).get("test_accuracy_fp32")),
             f"{r['seconds']:.0f}", r["start"]]
            for name, r in res["recipes"].items()]
    print(f"learning rate {res.get('lr', 0.1):g}")
    print(table(["recipe", "ONNX fp32 test %", "ONNX int8 test %", "torch test %", "teacher test %",
                 "reference ONNX fp32 test %", "seconds", "start"], rows))


if __name__ == "__main__":
    main()
