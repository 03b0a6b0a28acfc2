"""Issue 14: the activation-memory figure (``nas.space._memory``) against a measured peak.

For every reference network of mobilenetv3 and shufflenetv2 (float, batch 1, its own input
side, 1000 classes, batch norm folded into the convolutions as in the export), torch's profiler (``profile_memory=True``) records every CPU allocation and
free of one inference forward pass (as the self memory of the op that made it); the measured
peak is the highest running total of those events, ops ordered by their end (weights are allocated before, so they are not in it). The computed figure is
``nas.space._memory.peak_activation_bytes`` of the float network's operator list. PyTorch runs
layer by layer like a phone runtime (activations in place), but keeps some temporaries a fused
runtime does not (the SE scale, the add's output beside its inputs): the ratio says how close
the two are.

    python benchmarks/memory_check.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402


def measured_peak(model, x) -> int:
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        model(x)  # warm
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            model(x)
    # each allocation and free is the "self" memory of the innermost op that made it; order the
    # ops by their end (a parent's frees come after its children's allocations)
    run, peak = 0, 0
    for ev in sorted(prof.events(), key=lambda e: e.time_range.end):
        run += ev.self_cpu_memory_usage
        peak = max(peak, run)
    return peak


def main() -> None:
    import torch

    import nas
    from nas.models import build_model, fold_batchnorm
    from nas.space import peak_activation_bytes

    torch.set_num_threads(1)
    rows = []
    for space_name in ("mobilenetv3", "shufflenetv2"):
        space = nas.load_space(space_name)
        for name in space.references():
            cand = space.reference(name).replace_bits(32)
            model = fold_batchnorm(build_model(cand, 1000, 3).eval())  # as exported: BN folded
            x = torch.randn(1, 3, cand.resolution, cand.resolution)
            meas = measured_peak(model, x)
            comp = peak_activation_bytes(cand.ops(num_classes=1000))
            rows.append([name, cand.resolution, f"{comp / 1024:.0f}", f"{meas / 1024:.0f}", f"{comp / meas:.2f}"])
    print(machine())
    print(table(["reference (fp32)", "side", "computed KiB", "measured KiB (torch profiler)", "computed / measured"],
                rows))


if __name__ == "__main__":
    main()
