"""Groundwork for issue 13 (ship the priced network): what training the winner at its own input
side would cost on this host, against the proxy side it trains at today.

For reference networks and their resolutions, the training step (forward, backward, SGD; the
winner's recipe: fake quantization at its bits, channels-last, batch 64, 2 threads) is timed on
seeded random inputs at the candidate's own side and at the side the built-in 28 px data gives
it today; 3 warm-up steps, then the median of 10. Reported: images per second and the minutes
5 epochs of the built-in training split (5,400 images) would take.

    python benchmarks/winner_resolution_cost.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

import nas  # noqa: E402
from nas.models import apply_fake_quant
from nas.train import proxy_resolution

NETS = ["mobilenet_v3_small_1.0_224", "mobilenet_v3_large_0.75_224", "mobilenet_v2_1.0_128",
        "mobilenet_v2_1.0_224", "shufflenet_v2_x1.0_224"]
BATCH, THREADS, IMAGES, EPOCHS = 64, 2, 5400, 5


def step_seconds(cand, side: int) -> float:
    torch.manual_seed(0)
    model = nas.build_model(cand, 10, 1, resolution=side)
    apply_fake_quant(model)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(BATCH, 1, side, side).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,))
    times = []
    for i in range(13):
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(THREADS)
    print(f"Measured on: {machine()}\n")
    rows = []
    for name in NETS:
        cand = nas.parse_candidate(name)
        for label, side in (("proxy side today", proxy_resolution(cand, 28)), ("own side", cand.resolution)):
            s = step_seconds(cand, side)
            ips = BATCH / s
            rows.append([name, label, side, f"{ips:.0f}", f"{EPOCHS * IMAGES / ips / 60:.1f}"])
            print(rows[-1], flush=True)
    print(table(["network", "input", "side px", "train img/s (median of 10 steps)",
                 f"min for {EPOCHS} epochs of {IMAGES}"], rows))


if __name__ == "__main__":
    main()
