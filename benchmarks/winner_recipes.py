"""Issue 6, second round: which training recipe for the winner, and the winners against the
references under the default recipe (no distillation).

On the CIFAR-10 search of benchmarks/winner.py (run once, reused), for each distinct winner
`--pick latency<=<reference latency>`, test accuracy (torch, fake-quantized at its bits) of:

  scratch        5 epochs from a random init, no teacher (the default recipe)
  scratch x2     10 epochs, no teacher (the compute of the L1 recipe)
  l1             the candidate unpruned (float) trained 5 epochs, its channels selected by L1
                 norm into the pruned winner (benchmarks/l1_prune.py), then 5 epochs
  kd             5 epochs distilled from the space's largest float candidate trained
                 --teacher-epochs epochs (a stronger teacher than the first round's 2);
                 first winner only. Not in the default list: at 12 images/s on a shared core
                 (mobilenetv3.large w1.25, all k7e6) 10 epochs take about 2 hours here
  kd_parent      5 epochs distilled from the candidate's own unpruned float version trained
                 2 x 5 epochs (a teacher a user could pass with --teacher; about 2 min here)

and each reference trained with the default recipe (5 epochs, no teacher, float). All at the
candidate's proxy input side, 2 torch threads, seed 0.

    python benchmarks/winner_recipes.py [--teacher-epochs 10] [--out benchmarks/results/winner_recipes.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import portable, table  # noqa: E402
from winner import start  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--epochs", type=float, default=5.0)
    ap.add_argument("--teacher-epochs", type=float, default=10.0)
    ap.add_argument("--recipes", default="scratch,scratch_x2,l1,kd_parent")
    ap.add_argument("--runs", default=str(Path(tempfile.gettempdir()) / "hwnas-bench-winner"))
    ap.add_argument("--out", default=str(HERE / "results" / "winner_recipes.json"))
    args = ap.parse_args()

    import torch
    from l1_prune import l1_transfer

    import nas
    from nas.report import load_run
    from nas.search import trial_row
    from nas.train import proxy_resolution
    from nas.winner import pick_winner
    from nas.winner._distill import DistillConfig, _accuracy, _teacher, _train

    torch.set_num_threads(2)
    out, res, run_dir, refs, data = start(args)
    study, meta, _ = load_run(run_dir)
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)]
    space = nas.load_space("mobilenetv3")
    cfg = DistillConfig(epochs=args.epochs, teacher_epochs=args.teacher_epochs, threads=2, seed=0)
    (run_dir / "teachers").mkdir(exist_ok=True)

    def save():
        out.write_text(portable(json.dumps(res, indent=1)))

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    res.setdefault("winners", {})
    for ref, _, lat in refs:
        win = pick_winner(rows, meta.latency_budget_ms, f"latency<={lat}")
        cand = space.parse(win.key)
        d = data.at_resolution(proxy_resolution(cand, data.resolution))
        xt, yt = d.test_arrays()
        w = res["winners"].setdefault(win.key, {"trial": win.number, "refs": [], "side": d.resolution,
                                                "recipes": {}})
        if ref not in w["refs"]:
            w["refs"].append(ref)
        for recipe in args.recipes.split(","):
            if recipe in w["recipes"] or (recipe in ("kd", "kd_parent") and ref != refs[0][0]):
                continue  # KD only for the first winner: its teacher costs ~15 min per input side
            t0 = time.perf_counter()
            extra = {}
            if recipe == "scratch":
                model, _ = _train(cand, d, args.epochs, cfg)
            elif recipe == "scratch_x2":
                model, _ = _train(cand, d, 2 * args.epochs, cfg)
            elif recipe == "l1":
                parent_cand = cand.unpruned().replace_bits(32)
                parent, _ = _train(parent_cand, d, args.epochs, cfg, quantize=False)
                extra["parent_test_accuracy"] = _accuracy(parent, xt, yt)
                model, _ = _train(cand, d, args.epochs, cfg, init=lambda m: l1_transfer(parent, m))
            elif recipe == "kd":
                teacher, tinfo = _teacher(space, d, cfg, run_dir / "teachers", None)
                extra["teacher"] = tinfo["key"]
                extra["teacher_epochs"] = args.teacher_epochs
                extra["teacher_test_accuracy"] = _accuracy(teacher, xt, yt)
                extra["teacher_seconds"] = tinfo["seconds"]
                model, _ = _train(cand, d, args.epochs, DistillConfig(**{**cfg.__dict__, "kd": True}),
                                  teacher=teacher)
            elif recipe == "kd_parent":
                teacher, _ = _train(cand.unpruned().replace_bits(32), d, 2 * args.epochs, cfg, quantize=False)
                extra["teacher"] = "the candidate unpruned, float"
                extra["teacher_epochs"] = 2 * args.epochs
                extra["teacher_test_accuracy"] = _accuracy(teacher, xt, yt)
                model, _ = _train(cand, d, args.epochs, DistillConfig(**{**cfg.__dict__, "kd": True}),
                                  teacher=teacher)
            else:
                raise SystemExit(f"unknown recipe {recipe}")
            w["recipes"][recipe] = {"test_accuracy": _accuracy(model, xt, yt),
                                    "seconds": time.perf_counter() - t0, **extra}
            save()
            log(f"trial {win.number} {recipe}: {w['recipes'][recipe]}")
    res.setdefault("references", {})
    for ref, cand, lat in refs:
        if ref in res["references"]:
            continue
        d = data.at_resolution(proxy_resolution(cand, data.resolution))
        xt, yt = d.test_arrays()
        t0 = time.perf_counter()
        model, _ = _train(cand, d, args.epochs, cfg, quantize=False)
        res["references"][ref] = {"key": cand.key, "latency_ms": lat, "side": d.resolution,
                                  "test_accuracy": _accuracy(model, xt, yt), "seconds": time.perf_counter() - t0}
        save()
        log(f"reference {ref}: {res['references'][ref]['test_accuracy']:.4f}")
    summarize(res)


def summarize(res: dict) -> None:
    names = ["scratch", "scratch_x2", "l1", "kd_parent", "kd"]
    rows = []
    for key, w in res["winners"].items():
        r = w["recipes"]
        rows.append([f"trial {w['trial']} ({', '.join(w['refs'])})", w["side"]]
                    + [f"{r[n]['test_accuracy'] * 100:.2f}" if n in r else "-" for n in names])
    print(table(["winner (for references)", "side px", "scratch 5 ep %", "scratch 10 ep %",
                 "L1 init (5+5 ep) %", "KD from own parent, 5 ep %", "KD from largest, 5 ep %"], rows))
    for key, w in res["winners"].items():
        r = w["recipes"]
        if "l1" in r:
            print(f"\ntrial {w['trial']}: unpruned parent {r['l1']['parent_test_accuracy'] * 100:.2f}%", end="")
        for n in ("kd_parent", "kd"):
            if n in r:
                print(f"; {n} teacher {r[n]['teacher']} ({r[n]['teacher_epochs']:g} epochs) "
                      f"{r[n]['teacher_test_accuracy'] * 100:.2f}%", end="")
    print("\n")
    rows = []
    for key, w in res["winners"].items():
        acc = w["recipes"].get("scratch", {}).get("test_accuracy")
        for ref in w["refs"]:
            r = res["references"].get(ref)
            if r and acc is not None:
                rows.append([ref, f"{r['latency_ms']:.3f}", f"{r['test_accuracy'] * 100:.2f}", f"trial {w['trial']}",
                             f"{acc * 100:.2f}", f"{(acc - r['test_accuracy']) * 100:+.2f}"])
    print(table(["reference", "ref. pixel7 ms", "ref. test % (5 ep)", "winner", "winner test % (5 ep)",
                 "winner - ref. (points)"], rows))


if __name__ == "__main__":
    main()
