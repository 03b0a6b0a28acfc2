"""Issue 15: what torch.compile and bf16 autocast would do to the proxy's training step.

The proxy trains a different network for every candidate, so a compiled step pays its compile
time once per candidate; it is worth it only if (compile seconds) < (steps per candidate) x
(eager step - compiled step). This measures those three figures, and bf16 autocast's step time,
for one candidate (MobileNetV3-Small 0.75 with 8-bit fake quantization, as the search trains
it) at each input side, with the proxy's own step: SGD (Nesterov, the proxy's parameter groups),
label-smoothed cross-entropy, gradient clipping at 5, channels-last batches of 32.

- ``eager``: the step as ``nas.train._proxy.train_model`` runs it;
- ``compile``: ``torch.compile(model)`` (default mode); first step = compile + one step;
- ``bf16``: the forward pass under ``torch.autocast(device, torch.bfloat16)``;
- ``eager-float``, ``compile-float``: the same network at 32 bits (no fake quantization), which
  is what the winner's teacher and float candidates train as;
- ``compile-graphs`` (CUDA only): ``torch.compile(model, mode="reduce-overhead")``, whose forward
  and backward replay as CUDA graphs (the optimizer step stays eager);
- ``graph`` (CUDA only): the whole step (forward, backward, clipping, SGD) captured once as one
  CUDA graph and replayed, each replay after copying the batch into the captured input, as the
  proxy would feed it. The learning rate is a tensor so a schedule could change it between replays.

Step times are medians over ``--steps`` steps after ``--warm`` warm-up steps, on random batches
(the data path is not part of the step). On CUDA each timed step ends with a synchronisation.
One fresh process per arm, ``--threads`` threads (default 1, what a search worker gets).

    python benchmarks/step_options.py --device cpu            # any machine
    python benchmarks/step_options.py --device cuda           # where a GPU is

Results: benchmarks/results/step_options.json (rows keyed by machine, device, side, arm).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, portable, table  # noqa: E402

OUT = HERE / "results" / "step_options.json"
CANDIDATE = "mobilenet_v3_small_0.75_224"


def _model(side: int, device: str, bits: int = 8):
    import torch

    import nas
    from nas.models import apply_fake_quant, build_model

    torch.manual_seed(0)
    cand = nas.load_space("mobilenetv3").reference(CANDIDATE).replace_bits(bits)
    model = build_model(cand, 10, 3, resolution=side)
    apply_fake_quant(model)  # nothing to do at 32 bits
    return model.to(device=torch.device(device), memory_format=torch.channels_last)


def run_arm(arm: str, side: int, device: str, steps: int, warm: int, batch: int) -> dict:
    import torch
    from torch import nn

    from nas.train import ProxyBudget, make_optimizer

    model = _model(side, device, 32 if arm.endswith("-float") else 8)
    opt = make_optimizer(model, ProxyBudget())
    crit = nn.CrossEntropyLoss(label_smoothing=ProxyBudget().label_smoothing)
    if arm in ("graph", "compile-graphs") and not device.startswith("cuda"):
        raise RuntimeError(f"{arm} needs CUDA")
    if arm == "graph":  # a tensor learning rate: a captured step reads it on each replay
        for group in opt.param_groups:
            group["lr"] = torch.tensor(float(group["lr"]), device=device)
    fwd = torch.compile(model, mode="reduce-overhead") if arm == "compile-graphs" else \
        torch.compile(model) if arm.startswith("compile") else model
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, side, side, generator=g).to(device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step() -> float:
        if arm.startswith("bf16"):
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
                out = fwd(x)
            loss = crit(out.float(), y)
        else:
            loss = crit(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss

    model.train()
    t0 = time.perf_counter()
    if arm == "graph":
        step = _captured(step, x, torch)
    first = float(step().detach())
    sync()
    first_s = time.perf_counter() - t0
    for _ in range(warm):
        step()
    sync()
    times, losses = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        losses.append(step().detach())
        sync()
        times.append(time.perf_counter() - t0)
    return {"first_step_s": first_s, "step_ms": 1e3 * statistics.median(times), "first_loss": first,
            "last_loss": float(losses[-1]), "images_per_s": batch / statistics.median(times)}


def _captured(step, x, torch):
    """``step`` captured as one CUDA graph (after warm-up steps on a side stream, which create the
    momentum buffers), returned as a replay that first copies a fresh batch into the input."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        loss = step()
    batch = x.clone()

    def replay():
        x.copy_(batch, non_blocking=True)  # what feeding a new batch costs
        graph.replay()
        return loss
    return replay


def _child(arm: str, side: int, args, queue) -> None:
    import torch

    torch.set_num_threads(args.threads)
    try:
        queue.put(run_arm(arm, side, args.device, args.steps, args.warm, args.batch))
    except Exception as exc:  # a step that cannot run this way is a result, not a crash
        queue.put({"failed": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"})


def _in_fresh_process(arm: str, side: int, args) -> dict:
    """Each arm in its own process: compiled graphs and caches of one arm never serve another."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(arm, side, args, queue))
    p.start()
    try:
        return queue.get(timeout=1800)
    finally:
        p.join()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sides", type=int, nargs="+", default=[32, 160])
    ap.add_argument("--arms", nargs="+", help="default: eager compile bf16 eager-float compile-float, and on "
                    "CUDA also compile-graphs graph")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA GPU here")
    if args.arms is None:
        args.arms = ["eager", "compile", "bf16", "eager-float", "compile-float"] + \
            (["compile-graphs", "graph"] if args.device.startswith("cuda") else [])
    here = machine() + (f"; {torch.cuda.get_device_name(0)}" if args.device.startswith("cuda") else "")
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"rows": []}
    for side in args.sides:
        for arm in args.arms:
            r = _in_fresh_process(arm, side, args)
            row = {"machine": here, "device": args.device, "side": side, "arm": arm, "batch": args.batch,
                   "threads": args.threads, **r}
            results["rows"] = [x for x in results["rows"] if (x["machine"], x["device"], x["side"], x["arm"],
                                                              x["batch"]) != (here, args.device, side, arm, args.batch)]
            results["rows"].append(row)
            out.write_text(portable(json.dumps(results, indent=1)))
            print(f"{side} px {arm}: " + (f"step {r['step_ms']:.1f} ms, first step {r['first_step_s']:.1f} s"
                                          if "step_ms" in r else r["failed"]), flush=True)
    body = []
    for x in sorted(results["rows"], key=lambda x: (x["machine"], x["device"], x["side"], x["arm"])):
        base = "eager-float" if x["arm"].endswith("-float") else "eager"
        eager = next((e for e in results["rows"] if (e["machine"], e["device"], e["side"], e["arm"], e["batch"])
                      == (x["machine"], x["device"], x["side"], base, x["batch"]) and "step_ms" in e), None)
        if "step_ms" not in x:
            body.append([x["machine"], x["device"], x["side"], x["arm"], "", "", "", x["failed"]])
            continue
        saved = eager["step_ms"] - x["step_ms"] if eager else None
        extra = x["first_step_s"] - (eager["first_step_s"] if eager else 0)
        body.append([x["machine"], x["device"], x["side"], x["arm"], f"{x['step_ms']:.1f}",
                     f"{eager['step_ms'] / x['step_ms']:.2f}x" if eager else "", f"{x['first_step_s']:.1f}",
                     f"{extra / (saved / 1e3):.0f}" if saved and saved > 0 and x["arm"] != base else
                     ("never" if x["arm"] != base else "")])
    print(table(["machine", "device", "side px", "arm", "step ms (median)", "vs eager", "first step s",
                 "steps to repay the first step"], body))


if __name__ == "__main__":
    main()
