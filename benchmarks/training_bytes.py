"""The proxy's training-memory estimate (``nas.train.estimate_training_bytes``) against the peak
memory a fake-quantized training step really takes.

Each network runs in a fresh process (1 torch thread, channels-last, batch 32, colour input):
it is built and fake-quantized, then the peak RSS growth over two SGD steps is read
(``ru_maxrss``) and set beside the estimate. The estimate decides whether a trial is refused for
memory before it trains (``evaluate_proxy``).

    python benchmarks/training_bytes.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, table  # noqa: E402

# (space, seed or -1 for a reference, proxy side, reference name)
CASES = [("mobilenetv3", -1, 32, "mobilenet_v3_large_1.0_224"), ("mobilenetv3", -1, 32, "mobilenet_v3_small_1.0_224"),
         ("mobilenetv3", 1, 32, ""), ("shufflenetv2", 2, 32, ""), ("fbnet", 3, 32, ""),
         ("mobilenetv2", -1, 64, "mobilenet_v2_1.0_224"), ("mobilenetv3", -1, 96, "mobilenet_v3_large_1.0_224"),
         ("shufflenetv2", 5, 96, ""), ("fbnet", 7, 64, "")]

CHILD = r"""
import gc, json, random, resource, sys
import torch
torch.set_num_threads(1)
import nas
from nas.models import apply_fake_quant, build_model
from nas.train import estimate_training_bytes
space, seed, side, ref = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = nas.load_space(space)
cand = s.reference(ref) if seed < 0 else s.sample(random.Random(seed))
class Shape:  # the facts estimate_training_bytes reads
    resolution, num_classes, in_channels = side, 10, 3
model = build_model(cand, 10, 3, resolution=side)
apply_fake_quant(model)
model = model.to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(32, 3, side, side).to(memory_format=torch.channels_last)
y = torch.randint(0, 10, (32,))
gc.collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(2):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"key": cand.key, "side": side, "measured": (peak - base) * 1024,
                  "estimate": estimate_training_bytes(cand, Shape, 32)}))
"""


def main() -> None:
    rows = []
    for space, seed, side, ref in CASES:
        out = subprocess.run([sys.executable, "-c", CHILD, space, str(seed), str(side), ref], check=True,
                             capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"Measured on: {machine()}\n")
    print(table(["network", "side", "measured MB", "estimate MB", "estimate / measured"],
                [[r["key"][:44], r["side"], f"{r['measured'] / 1e6:.1f}", f"{r['estimate'] / 1e6:.1f}",
                  f"{r['estimate'] / r['measured']:.2f}"] for r in rows]))
    (HERE / "results" / "training_bytes.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
