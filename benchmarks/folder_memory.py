"""Peak memory of loading an image folder and training on it: the disk-cached loader against the
in-memory one it replaced.

    python benchmarks/folder_memory.py [--images 3000 20000] [--old PATH] [--search]

Makes a folder of synthetic 224x224 JPEGs (10 classes, seeded; kept in $TMPDIR between runs).
For each size, a fresh process runs what the issue measured: ``nas.load_dataset(folder)`` and
one ``nas.evaluate_proxy`` of mobilenet_v3_small_0.75_224 on 256 training images. Reported:
the process's peak resident memory (ru_maxrss) and its increase over the imports. The first
load decodes the folder into the cache (``decode`` row); the second reuses it (``cached``).
``--old PATH`` runs the same process with PYTHONPATH=PATH (a checkout of the previous loader).
``--search`` also runs ``nas search --data FOLDER --trials 4 --workers 2 --proxy-images 256
--references 0 --no-distill`` and samples the summed resident memory (anonymous and file-backed,
from /proc) of the driver and every process under it (Ray's raylet and workers) every 0.25 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, portable, table  # noqa: E402

CHILD = r'''
import json, resource, sys, time
t0 = time.perf_counter()
import nas
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ds = nas.load_dataset(sys.argv[1])
t_load = time.perf_counter() - t0
cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224")
r = nas.evaluate_proxy(cand, ds, epochs=1, max_train_images=256)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"imports_kb": base, "peak_kb": peak, "load_s": t_load, "proxy_s": r.seconds,
                  "failed": r.failed, "reason": r.reason, "train": len(ds.x_train),
                  "kind": type(ds.x_train).__name__}))
'''


def make_folder(n: int) -> Path:
    from PIL import Image

    root = Path(tempfile.gettempdir()) / f"hwnas_folder_{n}"
    if (root / ".done").exists():
        return root
    rng = np.random.default_rng(0)
    for i in range(n):
        c = i % 10
        d = root / f"class{c}"
        d.mkdir(parents=True, exist_ok=True)
        base = np.zeros((224, 224, 3), np.float32) + rng.uniform(0, 255, 3) * 0.5 + c * 10
        img = np.clip(base + rng.normal(0, 40, (224, 224, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"{i:06d}.jpg", quality=90)
    (root / ".done").touch()
    return root


def tree_memory(root_pid: int) -> tuple[int, int]:
    """Summed RssAnon and RssFile (kB) of ``root_pid`` and its descendants."""
    parent, mem = {}, {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        f = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parent[int(p)] = int(f["PPid"].strip())
        mem[int(p)] = (int(f.get("RssAnon", "0 kB").split()[0]), int(f.get("RssFile", "0 kB").split()[0]))
    tree, grew = {root_pid}, True
    while grew:
        new = {p for p, pp in parent.items() if pp in tree} - tree
        tree |= new
        grew = bool(new)
    return sum(mem.get(p, (0, 0))[0] for p in tree), sum(mem.get(p, (0, 0))[1] for p in tree)


def run_child(folder: Path, pythonpath: str | None, cache: Path) -> dict:
    env = dict(os.environ, HWNAS_CACHE=str(cache))
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    # cwd outside the checkout: `python -c` puts the current folder first on sys.path
    p = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, env=env,
                       cwd=tempfile.gettempdir())
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["killed"])[-1][:200], "rc": p.returncode}
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_search(folder: Path, cache: Path, out: Path) -> dict:
    env = dict(os.environ, HWNAS_CACHE=str(cache))
    cmd = [sys.executable, "-m", "nas", "search", "--data", str(folder), "--trials", "4", "--workers", "2",
           "--proxy-images", "256", "--references", "0", "--no-distill", "--out", str(out), "--name", "mem"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0, 0, 0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            anon, file_ = tree_memory(proc.pid)
            if anon + file_ > peak[0] + peak[1]:
                peak[:2] = [anon, file_]
            peak[2] = max(peak[2], anon)
            time.sleep(0.25)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    stop.set()
    th.join()
    return {"rc": proc.returncode, "seconds": time.perf_counter() - t0, "peak_total_kb": peak[0] + peak[1],
            "at_peak_anon_kb": peak[0], "at_peak_file_kb": peak[1], "peak_anon_kb": peak[2],
            "stderr_tail": err.strip().splitlines()[-1:] if proc.returncode else []}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, nargs="+", default=[3000, 20000])
    ap.add_argument("--old", help="PYTHONPATH of the previous loader's checkout")
    ap.add_argument("--old-max", type=int, default=5000, help="largest folder to try the old loader on")
    ap.add_argument("--search", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/folder_memory.json"))
    args = ap.parse_args()
    print(f"Measured on: {machine()}\n")
    results, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.images:
            t = time.perf_counter()
            folder = make_folder(n)
            made = time.perf_counter() - t
            cache = Path(tmp) / f"cache{n}"
            arms = [("disk cache, decode", None), ("disk cache, cached", None)]
            if args.old and n <= args.old_max:
                arms.append(("in memory (before)", args.old))
            elif args.old:  # its per-channel statistics alone need N x 224 x 224 x 3 x 8 bytes
                rows.append([n, "in memory (before)", f"not run: its mean/std pass alone needs "
                             f"{n * 224 * 224 * 3 * 8 / 1e9:.0f} GB here", "", "", ""])
            for arm, pp in arms:
                r = run_child(folder, pp, cache if pp is None else Path(tmp) / f"old{n}")
                r.update(images=n, arm=arm, folder_s=round(made, 1))
                results.append(r)
                if "error" in r:
                    rows.append([n, arm, "failed: " + r["error"], "", "", ""])
                    continue
                rows.append([n, arm, f"{r['peak_kb'] / 1024:.0f}", f"{(r['peak_kb'] - r['imports_kb']) / 1024:.0f}",
                             f"{r['load_s']:.1f}", f"{r['proxy_s']:.1f}"])
            if args.search:
                s = run_search(folder, cache, Path(tmp) / f"runs{n}")
                s.update(images=n, arm="nas search (driver + Ray workers)")
                results.append(s)
                rows.append([n, s["arm"], f"{s['peak_total_kb'] / 1024:.0f} (anon {s['peak_anon_kb'] / 1024:.0f})",
                             "", "", f"{s['seconds']:.0f} (rc {s['rc']})"])
    print(table(["images (224 px JPEG)", "loader", "peak RSS MB", "over imports MB", "load s", "proxy / search s"],
                rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(portable(json.dumps({"machine": machine(), "results": results}, indent=1)))


if __name__ == "__main__":
    main()
