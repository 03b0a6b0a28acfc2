"""Issue 24 item 2: every number derived from an operator's anatomy, dumped so that a change to
how the anatomy is written can be checked to change none of them.

For every search space, its reference networks and 200 seeded random candidates, each at its
own bits, at fp32 and at int8: the MACs of every op, the latency every non-host device profile
predicts (1000 and 10 classes), the estimator's features of every distinct op at fp32 and int8
execution, the activation memory of every distinct op, the peak activation memory, and
``estimate_training_bytes`` at two proxy data shapes. (The host profile is left out: it times
missing ops on this machine; its estimator reads the same features, which are compared.)

    python benchmarks/anatomy_numbers.py dump anatomy_before.json
    python benchmarks/anatomy_numbers.py compare anatomy_before.json

``compare`` exits 1 and lists the first differences if any number differs (integers exactly,
floats to 1e-9 relative).
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_RANDOM = 200
SEED = 24
PROFILES = ("pixel1", "pixel7", "note10")
PROXY_DATA = (SimpleNamespace(resolution=32, num_classes=10, in_channels=3),
              SimpleNamespace(resolution=64, num_classes=5, in_channels=1))


def candidates(space):
    rng = random.Random(SEED)
    cands = [space.reference(n) for n in space.references()]
    cands += [space.sample(rng) for _ in range(N_RANDOM)]
    out = []
    for c in cands:
        out += [c, c.replace_bits(32), c.replace_bits(8)]
    return list({c.key: c for c in out}.values())


def numbers() -> dict:
    from nas.latency import load_device, op_features
    from nas.space import activation_bytes, load_space, peak_activation_bytes, space_names
    from nas.train import estimate_training_bytes

    devices = [load_device(p) for p in PROFILES]
    out: dict = {"candidates": {}, "ops": {}}
    for name in space_names():
        space = load_space(name)
        for cand in candidates(space):
            rec: dict = {}
            for nc in (1000, 10):
                ops = cand.ops(num_classes=nc)
                rec[f"macs.{nc}"] = [op.macs for op in ops]
                rec[f"peak.{nc}"] = peak_activation_bytes(ops)
                for d in devices:
                    rec[f"ms.{d.name}.{nc}"] = d.latency_ms(cand, num_classes=nc)
                for op in ops:
                    _op_numbers(out["ops"], op, activation_bytes, op_features)
            for data in PROXY_DATA:
                ops = cand.ops(resolution=data.resolution, num_classes=data.num_classes,
                               in_channels=data.in_channels)
                tag = f"{data.resolution}.{data.num_classes}.{data.in_channels}"
                rec[f"proxy_macs.{tag}"] = [op.macs for op in ops]
                rec[f"proxy_peak.{tag}"] = peak_activation_bytes(ops)
                rec[f"train_bytes.{tag}"] = estimate_training_bytes(cand, data, 32)
                for op in ops:
                    _op_numbers(out["ops"], op, activation_bytes, op_features)
            out["candidates"][f"{name}|{cand.key}"] = rec
    return out


def _op_numbers(table: dict, op, activation_bytes, op_features) -> None:
    if op.key in table:
        return
    table[op.key] = {"macs": op.macs, "act": activation_bytes(op),
                     "f32": op_features(op, 32).tolist(), "i8": op_features(op, 8).tolist()}


def differences(a, b, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys differ ({len(a.keys() ^ b.keys())} not in both)"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, int) and isinstance(b, int):
        return [] if a == b else [f"{path}: {a} != {b}"]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0) else [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("dump", "compare"):
        print(__doc__.strip().splitlines()[-5], file=sys.stderr)
        print("usage: anatomy_numbers.py dump|compare FILE.json", file=sys.stderr)
        return 2
    now = numbers()
    if argv[0] == "dump":
        Path(argv[1]).write_text(json.dumps(now))
        print(f"{len(now['candidates'])} candidates, {len(now['ops'])} distinct ops -> {argv[1]}")
        return 0
    before = json.loads(Path(argv[1]).read_text())
    diff = differences(before, json.loads(json.dumps(now)))
    n_values = sum(len(v) for v in now["candidates"].values()) + 4 * len(now["ops"])
    if diff:
        print(f"{len(diff)} differences, first ones:", *diff[:20], sep="\n  ")
        return 1
    print(f"identical: {len(now['candidates'])} candidates, {len(now['ops'])} distinct ops, "
          f"{n_values} records (integers exact, floats to 1e-9 relative)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
