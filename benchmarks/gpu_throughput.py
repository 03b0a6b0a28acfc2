"""Issue 15: proxy training throughput on the CPU and on a GPU shared by K trials.

For each input side (32, 96, 160, 224 px; the CIFAR-10 subset resized, 3 channels) and one
candidate (MobileNetV3-Small 0.75 with 8-bit fake quantization, as the search trains it):

- ``cpu x1``: one process, 1 thread (what one search worker gets);
- ``cpu xC``: C processes at 1 thread each, C = the machine's cores (all CPU cores, as a CPU
  search would use them);
- ``gpu K=k``: k processes training on the same GPU at once (``--trials-per-gpu k``).

Each process first trains a short warm-up (cuDNN autotuning, allocator, first-call costs), then
waits at a barrier; all then train ``--images`` images (batch ``--batch``) and the aggregate rate
is every process's images over the wall time from the barrier to the last finish. Training only
(``nas.train._proxy.train_model`` via ``evaluate_proxy``'s ``train_seconds``), the proxy's own code
path: batches from ``nas.data._feed`` on the GPU, numpy on the CPU.

    python benchmarks/gpu_throughput.py --cpu                  # the CPU rows (any machine)
    python benchmarks/gpu_throughput.py --gpu --ks 1 2 4 8     # the GPU rows (where one is)

Results are appended to benchmarks/results/gpu_throughput.json, keyed by machine and arm.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, portable, table  # noqa: E402

CIFAR = HERE.parent.parent / "shared" / "data" / "cifar10_subset_10k_2k.npz"
OUT = HERE / "results" / "gpu_throughput.json"
CANDIDATE = "mobilenet_v3_small_0.75_224"


def _dataset(side: int, images: int):
    import nas

    ds = nas.load_dataset(str(CIFAR) if CIFAR.is_file() else "builtin", seed=0).subset(train=images, val=64)
    return ds.at_resolution(side)


def _worker(side: int, device: str, images: int, batch: int, warm: int, barrier, queue) -> None:
    import torch

    torch.set_num_threads(1)
    import nas
    from nas.train import evaluate_proxy

    cand = nas.load_space("mobilenetv3").reference(CANDIDATE).replace_bits(8)
    ds = _dataset(side, images)
    evaluate_proxy(cand, ds, seed=0, epochs=1, max_train_images=warm, batch_size=batch, device=device,
                   resolution=side, max_val_images=64, bn_recalibration_batches=1)
    barrier.wait()
    t0 = time.time()
    r = evaluate_proxy(cand, ds, seed=1, epochs=1, max_train_images=images, batch_size=batch, device=device,
                       resolution=side, max_val_images=64, bn_recalibration_batches=1)
    queue.put({"t0": t0, "t1": t0 + r.train_seconds, "images": images, "failed": r.failed, "reason": r.reason,
               "train_s": r.train_seconds})


def measure(side: int, device: str, procs: int, images: int, batch: int, warm: int) -> dict:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=_worker, args=(side, device, images, batch, warm, barrier, queue))
          for _ in range(procs)]
    for p in ps:
        p.start()
    rows = [queue.get(timeout=3600) for _ in ps]
    for p in ps:
        p.join()
    failed = [r["reason"] for r in rows if r["failed"]]
    if failed:
        return {"failed": failed[0]}
    wall = max(r["t1"] for r in rows) - min(r["t0"] for r in rows)
    return {"images_per_s": sum(r["images"] for r in rows) / wall, "wall_s": wall,
            "per_process_images_per_s": [r["images"] / r["train_s"] for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--sides", type=int, nargs="+", default=[32, 96, 160, 224])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--cpu-images", type=int, nargs="+", default=[2048, 512, 256, 128],
                    help="images per process per side on the CPU (one value per side)")
    ap.add_argument("--gpu-images", type=int, default=4096)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"rows": []}
    here = machine()
    arms = []
    if args.cpu:
        for side, n in zip(args.sides, args.cpu_images):
            arms += [(side, "cpu", 1, n), (side, "cpu", os.cpu_count() or 1, n)]
    if args.gpu:
        import torch

        if not torch.cuda.is_available():
            sys.exit("--gpu: torch sees no CUDA GPU here")
        here += f"; {torch.cuda.get_device_name(0)}"
        arms += [(side, "cuda", k, args.gpu_images) for side in args.sides for k in args.ks]
    for side, device, k, n in arms:
        r = measure(side, device, k, n, args.batch, warm=min(n, 4 * args.batch))
        row = {"machine": here, "side": side, "device": device, "procs": k, "images": n, "batch": args.batch, **r}
        results["rows"] = [x for x in results["rows"] if (x["machine"], x["side"], x["device"], x["procs"],
                                                          x["batch"]) != (here, side, device, k, args.batch)]
        results["rows"].append(row)
        out.write_text(portable(json.dumps(results, indent=1)))
        print(f"{side} px {device} x{k}: " + (f"{r['images_per_s']:.0f} images/s" if "images_per_s" in r
                                              else f"failed: {r['failed']}"), flush=True)
    body = [[x["machine"], x["side"], f"{x['device']} x{x['procs']}", x["batch"], x["images"],
             f"{x['images_per_s']:.0f}" if "images_per_s" in x else x["failed"]]
            for x in sorted(results["rows"], key=lambda x: (x["machine"], x["side"], x["device"], x["procs"]))]
    print(table(["machine", "side px", "arm", "batch", "images per process", "images/s (aggregate)"], body))


if __name__ == "__main__":
    main()
