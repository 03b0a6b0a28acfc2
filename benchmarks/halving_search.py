"""Issue 14: successive halving against single-fidelity search at equal worker time.

Arms per (data, seed): TPE with ``--fidelity halving`` (eta 3, 3 rungs, ``--halving-trials``
candidates), TPE single fidelity and random single fidelity with ``round(halving_trials x
Rungs.cost_per_candidate())`` candidates (the same expected worker time). Each run is a real
``run_search`` (Optuna + Ray, 2 workers, 1 thread each) on mobilenetv3 / pixel7, budget from
MobileNetV3-Small, proxy cut to 1,000 training images per epoch (as benchmarks/search_samplers.py).

Hypervolume at equal worker time: every result (a base trial, or a rung) is placed on a timeline
by its finish time and charged its own worker seconds; HV is taken where the cumulative worker
seconds reach T = the smallest total among the arms of that (data, seed). Two views: "top" uses
each trial's highest rung finished by then (what the report draws: promoted trials have trained
longer), "base" uses rung-0 accuracies only (one budget for every arm: sampler guidance alone).

``--winners`` (CIFAR): the TPE arms' winners ("best") after the final training at the proxy side
(own-side step off: it is the same for both arms): the halving winner continued from its top-rung
weights (``--continue-epochs``) and from scratch (5 epochs), the single-fidelity winner from
scratch (5 epochs); test accuracy and seconds. ``--tau``: the candidates that reached the top rung,
trained 10x the base budget with 3 seeds (mean accuracy = target); Kendall tau of their top-rung
and of their base-rung accuracy against it.

    python benchmarks/halving_search.py --data cifar builtin --seeds 0 1 2 --winners --tau

``--variant NAME`` adds one more halving arm per (data, seed), with the halving settings the
name stands for (``VARIANTS``: eta 2, ranking rungs by validation loss, promotion by accuracy
within latency bands, ...) and as many candidates as the single-fidelity arms' expected worker
time allows at its eta. Its hypervolume is compared with the single-fidelity arms at T = the
smallest total of the three; its winner is trained from scratch (5 epochs) as the others'.

    python benchmarks/halving_search.py --data cifar --seeds 0 1 2 --winners --variant bands

``--equal-time-winners --run-root DIR`` (for each ``--data``): each halving arm's and TPE single's
``--pick best`` winner among the results finished by T = the smaller of the two arms' worker
seconds, trained from scratch (5 epochs, at the proxy side); DIR holds the run folders.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, portable, table  # noqa: E402

CIFAR = HERE.parent.parent / "shared" / "data" / "cifar10_subset_10k_2k.npz"
OUT = HERE / "results" / "halving_search.json"


VARIANTS = {  # halving settings per --variant (the default arm: eta 3, 3 rungs, accuracy, pareto)
    "eta2": {"eta": 2},
    "val_loss": {"rank_by": "val_loss"},
    "bands": {"promote": "bands"},
    "eta2-bands": {"eta": 2, "promote": "bands"},
    "eta2-val_loss": {"eta": 2, "rank_by": "val_loss"},
    "bands-val_loss": {"promote": "bands", "rank_by": "val_loss"},
}


def timeline(study) -> list[dict]:
    """Every finished result: (finish time, worker seconds, trial, rung, accuracy, latency)."""
    from nas.search import RUNGS_ATTR, trial_attrs

    ev = []
    for t in study.trials:
        a = trial_attrs(t)
        st = a.get("status")
        if st not in ("evaluated", "failed", "duplicate") or a.get("interrupted") or t.datetime_complete is None:
            continue
        ev.append({"t": t.datetime_complete.timestamp(), "s": 0.0 if st == "duplicate" else a.get("proxy_seconds", 0.0),
                   "n": t.number, "rung": 0, "acc": a.get("accuracy") if st != "failed" else None,
                   "lat": a["latency_ms"]})
        for r in study.user_attrs.get(f"{RUNGS_ATTR}{t.number}", []):
            ev.append({"t": dt.datetime.fromisoformat(r["finished"]).timestamp(), "s": r.get("seconds", 0.0),
                       "n": t.number, "rung": r["rung"],
                       "acc": r.get("accuracy") if r["status"] == "evaluated" else None, "lat": a["latency_ms"]})
    return sorted(ev, key=lambda e: e["t"])


def hv_at(events: list[dict], budget_ms: float, worker_s: float) -> dict:
    from nas.search import hypervolume_2d

    top, base, used = {}, {}, 0.0
    for e in events:
        if used + e["s"] > worker_s + 1e-9:
            break
        used += e["s"]
        if e["acc"] is None:
            continue
        if e["rung"] == 0:
            base[e["n"]] = (e["acc"], e["lat"])
        if e["rung"] >= top.get(e["n"], (-1,))[0]:
            top[e["n"]] = (e["rung"], e["acc"], e["lat"])
    return {"top": hypervolume_2d([(a, lat) for _, a, lat in top.values()], budget_ms),
            "base": hypervolume_2d(list(base.values()), budget_ms), "used_s": used}


def _long(args):
    key, data, epochs, seed, images = args
    import torch

    torch.set_num_threads(1)
    from nas.data import load_dataset
    from nas.train import evaluate_proxy

    return evaluate_proxy(key, load_dataset(data), seed=seed, epochs=epochs, max_train_images=images).accuracy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--halving-trials", type=int, default=21)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data", nargs="+", default=["cifar", "builtin"])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--winners", action="store_true")
    ap.add_argument("--continue-epochs", type=float, default=2.0)
    ap.add_argument("--tau", action="store_true")
    ap.add_argument("--equal-time-winners", action="store_true",
                    help="each halving arm's and TPE single's winner at T = the smaller of their worker "
                         "seconds, trained from scratch (a trial already trained is not trained again)")
    ap.add_argument("--run-root", help="the folder that holds the run folders (results record <tmp>)")
    ap.add_argument("--reuse", nargs="*", default=[],
                    help="run names whose --winners 'from scratch' training may stand for an equal-time winner "
                         "of the same network (trained by the same code)")
    ap.add_argument("--variant", action="append", default=[], choices=sorted(VARIANTS),
                    help="an extra halving arm (repeatable)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = Path(args.out)

    import optuna
    import ray

    from nas.api import run_search
    from nas.report import load_run
    from nas.run import Rungs, SearchConfig
    from nas.winner import DistillConfig, distill_run

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = json.loads(out.read_text()) if out.exists() else {"runs": [], "winners": [], "tau": {}}
    results["machine"] = machine()
    single_trials = round(args.halving_trials * Rungs(3, 3).cost_per_candidate())
    arms = [("tpe", "halving", args.halving_trials), ("tpe", "single", single_trials),
            ("random", "single", single_trials)]
    for v in args.variant:
        rungs = Rungs(VARIANTS[v].get("eta", 3), 3)
        arms.append(("tpe", f"halving-{v}", round(single_trials / rungs.cost_per_candidate())))
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-halving-bench-"))
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    for data in args.data:
        path = "builtin" if data == "builtin" else str(CIFAR)
        for seed in args.seeds:
            for sampler, fidelity, trials in arms:
                tag = (data, seed, sampler, fidelity, trials)
                if any(tuple(r["tag"]) == tag for r in results["runs"]):
                    continue
                cfg = SearchConfig(trials=trials, workers=2, data=path, sampler=sampler, seed=seed, out=str(tmp),
                                   name=f"{data}-{seed}-{sampler}-{fidelity}", references=0, distill=False,
                                   proxy={"max_train_images": args.images}, fidelity=fidelity.split("-")[0],
                                   proxy_kind="train",
                                   **VARIANTS.get(fidelity.partition("-")[2], {}))
                t0 = time.perf_counter()
                res = run_search(cfg)
                study, _, _ = load_run(res.run_dir)
                ev = timeline(study)
                row = {"tag": list(tag), "run_dir": str(res.run_dir), "budget_ms": res.budget_ms,
                       "events": ev, "worker_s": sum(e["s"] for e in ev), "wall_s": time.perf_counter() - t0,
                       "best": res.best_accuracy}
                if fidelity.startswith("halving"):
                    top = max(e["rung"] for e in ev)
                    row["top_rung"] = [{"n": e["n"], "key": study.trials[e["n"]].user_attrs["key"],
                                        "acc_top": e["acc"],
                                        "acc_base": study.trials[e["n"]].user_attrs["accuracy"]}
                                       for e in ev if e["rung"] == top and e["acc"] is not None]
                results["runs"].append(row)
                out.write_text(portable(json.dumps(results, indent=1)))
                print(f"{tag}: {row['worker_s']:.0f} worker-s, wall {row['wall_s']:.0f} s, best {res.best_accuracy}",
                      flush=True)
                if args.winners and data == "cifar" and sampler == "tpe":
                    starts = ["auto", "scratch"] if fidelity == "halving" else ["scratch"]
                    if any(w["tag"] == list(tag) for w in results["winners"]):
                        starts = []
                    for start in starts:
                        t1 = time.perf_counter()
                        card = distill_run(res.run_dir, DistillConfig(start=start, own_side_epochs=0,
                                                                      measure_host=False, out=f"w-{start}",
                                                                      continue_epochs=args.continue_epochs))
                        results["winners"].append({"tag": list(tag), "start": card.trained_at.start,
                                                   "test_acc": card.trained_at.proxy_side_test_accuracy,
                                                   "train_s": card.training_seconds.student,
                                                   "total_s": time.perf_counter() - t1, "key": card.candidate,
                                                   "proxy_acc": card.proxy_accuracy})
                        out.write_text(portable(json.dumps(results, indent=1)))
                        print(f"  winner ({start}): test {results['winners'][-1]['test_acc']:.4f} "
                              f"in {results['winners'][-1]['train_s']:.0f} s", flush=True)
    ray.shutdown()
    if args.equal_time_winners:
        equal_time_winners(results, out, Path(args.run_root) if args.run_root else tmp, args.seeds, set(args.reuse),
                           args.data)
    if args.tau:
        from nas.latency import kendall_tau

        for data in args.data:
            path = "builtin" if data == "builtin" else str(CIFAR)
            tops = [t for r in results["runs"] if r["tag"][0] == data and r["tag"][3] == "halving"
                    for t in r.get("top_rung", [])]
            keys = sorted({t["key"] for t in tops})
            if len(keys) < 3 or results["tau"].get(data, {}).get("keys") == keys:
                continue
            jobs = [(k, path, 10.0, s, args.images) for k in keys for s in (0, 1, 2)]
            with ProcessPoolExecutor(2) as ex:
                accs = list(ex.map(_long, jobs))
            target = [statistics.mean(accs[3 * i:3 * i + 3]) for i in range(len(keys))]
            first = {t["key"]: t for t in tops}
            top = [first[k]["acc_top"] for k in keys]
            base = [first[k]["acc_base"] for k in keys]
            results["tau"][data] = {"keys": keys, "target": target, "top": top, "base": base,
                                    "tau_top": kendall_tau(top, target), "tau_base": kendall_tau(base, target)}
            out.write_text(portable(json.dumps(results, indent=1)))
    summarize(results)


def winner_at(events: list[dict], budget_ms: float, worker_s: float) -> tuple[int, float] | None:
    """(trial, accuracy) that ``--pick best`` chooses among the results finished within
    ``worker_s`` worker seconds: the most accurate at its highest rung then, within the budget."""
    best, used = {}, 0.0
    for e in events:
        if used + e["s"] > worker_s + 1e-9:
            break
        used += e["s"]
        if e["acc"] is not None and e["lat"] <= budget_ms and e["rung"] >= best.get(e["n"], (-1,))[0]:
            best[e["n"]] = (e["rung"], e["acc"], e["lat"])
    if not best:
        return None
    n = max(best, key=lambda k: (best[k][1], -best[k][2], -k))
    return n, best[n][1]


def equal_time_winners(results: dict, out: Path, root: Path, seeds: list[int], reuse: set[str],
                       datas: list[str] = ("cifar",)) -> None:
    """Winner test accuracy at equal worker time (see --equal-time-winners)."""
    from nas.report import load_run
    from nas.winner import DistillConfig, distill_run

    done = results.setdefault("equal_time_winners", [])
    trained = {(w["run"], w["trial"]): w for w in done}
    for data, seed in [(d, s) for d in datas for s in seeds]:
        runs = {r["tag"][3]: r for r in results["runs"] if r["tag"][0] == data and r["tag"][1] == seed
                and r["tag"][2] == "tpe"}
        single = runs.get("single")
        for arm, r in runs.items():
            if not arm.startswith("halving") or single is None:
                continue
            T = min(r["worker_s"], single["worker_s"])
            for side in (r, single):
                pick = winner_at(side["events"], side["budget_ms"], T)
                run_name = Path(side["run_dir"]).name
                if pick is None or any(w["arm"] == arm and w["seed"] == seed and w["run"] == run_name for w in done):
                    continue
                prior = trained.get((run_name, pick[0]))
                if prior is None and run_name in reuse:  # the run's own --winners training of this network
                    key = load_run(root / run_name)[0].trials[pick[0]].user_attrs["key"]
                    same = next((w for w in results["winners"] if "-".join(map(str, w["tag"][:4])) == run_name
                                 and w["key"] == key and w["start"].startswith("from scr")), None)
                    if same is not None:
                        prior = {"run": run_name, "trial": pick[0], "key": key, "test_acc": same["test_acc"],
                                 "train_s": same["train_s"], "reused": "the run's --winners training"}
                if prior is None:
                    t1 = time.perf_counter()
                    card = distill_run(root / run_name, DistillConfig(pick=f"trial={pick[0]}", own_side_epochs=0,
                                                                     measure_host=False, out=f"w-T-{pick[0]}"))
                    prior = {"run": run_name, "trial": pick[0], "key": card.candidate,
                             "test_acc": card.trained_at.proxy_side_test_accuracy,
                             "train_s": card.training_seconds.student, "total_s": time.perf_counter() - t1}
                    trained[(run_name, pick[0])] = prior
                row = {**prior, "data": data, "arm": arm, "seed": seed, "T": T, "search_acc": pick[1]}
                done.append(row)
                out.write_text(portable(json.dumps(results, indent=1)))
                print(f"  seed {seed} {arm} T={T:.0f} s: {run_name} trial {pick[0]} -> test {row['test_acc']:.4f}",
                      flush=True)


def summarize(results: dict) -> None:
    """Per halving arm (the default one and each variant): its hypervolume and the two
    single-fidelity arms', all at T = the smallest worker-second total of the three, per seed."""
    print(results["machine"])
    body = []
    for data in ("cifar", "builtin"):
        runs = [r for r in results["runs"] if r["tag"][0] == data]
        for arm in sorted({r["tag"][3] for r in runs if r["tag"][3].startswith("halving")}):
            per_seed = []
            for seed in sorted({r["tag"][1] for r in runs}):
                trio = {(r["tag"][2], r["tag"][3]): r for r in runs if r["tag"][1] == seed
                        and r["tag"][3] in (arm, "single")}
                if len(trio) < 3:
                    continue
                T = min(r["worker_s"] for r in trio.values())
                per_seed.append((T, {k: hv_at(r["events"], r["budget_ms"], T) for k, r in trio.items()}))
            if not per_seed:
                continue
            n = len(per_seed)
            for view in ("top", "base"):
                m = {k: statistics.mean(h[k][view] for _, h in per_seed) for k in per_seed[0][1]}
                rnd = m[("random", "single")]
                for k, v in m.items():
                    if view == "top" and k[1] == "single":
                        continue  # the single arms have one view
                    body.append([data, arm, view if k[1] != "single" else "-", f"{k[0]} {k[1]}", n, f"{v:.4f}",
                                 " / ".join(f"{h[k][view]:.4f}" for _, h in per_seed), f"{v / rnd:.3f}x",
                                 f"{statistics.mean(t for t, _ in per_seed):.0f}"])
    print(table(["data", "comparison", "HV view", "arm", "seeds", "HV at equal worker time (mean)", "per seed",
                 "vs random", "worker s (mean T)"], body))
    if results["winners"]:
        wb = []
        for start in sorted({(w["tag"][3], w["start"].split(" for")[0]) for w in results["winners"]}):
            ws = [w for w in results["winners"] if (w["tag"][3], w["start"].split(" for")[0]) == start]
            wb.append([start[0], start[1], len(ws), f"{statistics.mean(w['test_acc'] for w in ws):.4f}",
                       " / ".join(f"{w['test_acc']:.4f}" for w in ws), f"{statistics.mean(w['train_s'] for w in ws):.0f}"])
        print(table(["search", "final training", "seeds", "test accuracy (mean)", "per seed", "training s (mean)"], wb))
    if results.get("equal_time_winners"):
        eb = []
        for data, arm in sorted({(w.get("data", "cifar"), w["arm"]) for w in results["equal_time_winners"]}):
            ws = [w for w in results["equal_time_winners"] if w["arm"] == arm and w.get("data", "cifar") == data]
            h = [w for w in ws if w["run"].split("-", 2)[2].startswith("tpe-halving")]
            s1 = [w for w in ws if w["run"].endswith("tpe-single")]
            seeds = sorted({w["seed"] for w in h} & {w["seed"] for w in s1})
            if not seeds:
                continue
            hs = [next(w for w in h if w["seed"] == k) for k in seeds]
            ss = [next(w for w in s1 if w["seed"] == k) for k in seeds]
            eb.append([data, arm, len(seeds), f"{statistics.mean(w['T'] for w in hs):.0f}",
                       f"{statistics.mean(w['test_acc'] for w in hs):.4f}", " / ".join(f"{w['test_acc']:.4f}" for w in hs),
                       f"{statistics.mean(w['test_acc'] for w in ss):.4f}", " / ".join(f"{w['test_acc']:.4f}" for w in ss),
                       f"{100 * (statistics.mean(w['test_acc'] for w in hs) - statistics.mean(w['test_acc'] for w in ss)):+.1f}"])
        print(table(["data", "halving arm", "seeds", "T worker s (mean)", "halving winner test (mean)", "per seed",
                     "TPE single winner at T (mean)", "per seed", "points"], eb))
    for data, t in results.get("tau", {}).items():
        print(f"{data}: {len(t['keys'])} top-rung candidates: tau top rung {t['tau_top']:.3f}, "
              f"base rung {t['tau_base']:.3f} (target: 10x base budget, mean of 3 seeds)")


if __name__ == "__main__":
    main()
