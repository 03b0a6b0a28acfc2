"""Peak memory of loading an image folder and training on it: the disk-cached loader against the
in-memory one it replaced.

    python benchmarks/folder_memory.py [--images 3000 20000] [--old PATH] [--search]

Makes a folder of synthetic 224x224 JPEGs (10 classes, seeded; kept in $TMPDIR between runs).
For each size, a fresh process runs what the issue measured: ``nas.load_dataset(folder)`` and
one ``nas.evaluate_proxy`` of mobilenet_v3_small_0.75_224 on 256 training images. Reported:
the process's peak resident memory (ru_maxrss) and its increase over the imports. The first
load decodes the folder into the cache (``decode`` row); the second reuses it (``cached``).
``--old PATH`` runs the same process with PYTHONPATH=PATH (a checkout of the previous loader).
``--eval`` (issue 24) runs, in a fresh process per folder after the cached load, what scores a split:
one proxy trial of mobilenet_v3_small_0.75_224 on 64 training images at 224 px, which scores every
validation image (``evaluate_proxy``), then that network's winner test scoring as ``nas distill``
does it (torch test accuracy, an fp32 ONNX export and its onnxruntime test accuracy); peak RSS
(ru_maxrss) after each stage. With ``--old PATH`` the same process also runs on that checkout (its
whole-split ``test_arrays`` path). Compare the peaks between folder sizes: what grows with the
number of photos.
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


EVAL_CHILD = r'''
import json, resource, sys, tempfile
from pathlib import Path
import nas
from nas.export import export_onnx
from nas.models import apply_fake_quant, build_model, strip_fake_quant
from nas.train import load_state

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

ds = nas.load_dataset(sys.argv[1])
out = {"imports_and_load_mb": peak_mb(), "val": len(ds.x_val), "test": len(ds.x_test),
       "batched": hasattr(ds, "eval_batches")}
cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224")
r = nas.evaluate_proxy(cand, ds, seed=0, epochs=1, max_train_images=64, keep_state=True)
out.update(proxy_mb=peak_mb(), val_accuracy=r.accuracy, failed=r.failed, reason=r.reason)
model = build_model(cand, ds.num_classes, ds.in_channels, resolution=r.resolution)
apply_fake_quant(model)
model.load_state_dict(load_state(r.state)["model"])
model = strip_fake_quant(model).eval()
path = export_onnx(model, Path(tempfile.mkdtemp()) / "m.onnx", resolution=r.resolution)
if out["batched"]:  # this checkout: the split a batch at a time (nas.winner._distill)
    from nas.export import onnx_accuracy_batches
    from nas.train import evaluate_batches
    torch_acc = evaluate_batches(model, ds.eval_batches("test"))
    out["torch_test_mb"] = peak_mb()
    onnx_acc = onnx_accuracy_batches(path, ds.eval_batches("test"))
else:  # the previous path: test_arrays, then the array functions
    from nas.export import onnx_accuracy
    from nas.train import evaluate_model
    xt, yt = ds.test_arrays()
    torch_acc = evaluate_model(model, xt, yt)
    out["torch_test_mb"] = peak_mb()
    onnx_acc = onnx_accuracy(path, xt, yt)
out.update(onnx_test_mb=peak_mb(), test_accuracy_torch=torch_acc, test_accuracy_onnx=onnx_acc)
print(json.dumps(out))
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


def run_child(folder: Path, pythonpath: str | None, cache: Path, code: str = CHILD) -> dict:
    env = dict(os.environ, HWNAS_CACHE=str(cache))
    env["PYTHONPATH"] = pythonpath or str(Path(__file__).resolve().parents[1])  # this checkout by default
    # cwd outside the checkout: `python -c` puts the current folder first on sys.path
    p = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env,
                       cwd=tempfile.gettempdir())
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["killed"])[-1][:200], "rc": p.returncode}
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_search(folder: Path, cache: Path, out: Path) -> dict:
    env = dict(os.environ, HWNAS_CACHE=str(cache))
    cmd = [sys.executable, "-m", "nas", "search", "--data", str(folder), "--trials", "4", "--workers", "2",
           "--proxy", "train", "--proxy-images", "256", "--references", "0", "--no-distill", "--out", str(out), "--name", "mem"]
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
    ap.add_argument("--eval", action="store_true", help="score the validation and test splits (issue 24)")
    ap.add_argument("--eval-only", action="store_true", help="only the --eval arms (after a cached load)")
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
            if args.eval_only:  # decoded once first, in a process of its own: its peak is not the scoring's
                arms = []
                args.eval = True
                r = run_child(folder, None, cache, "import sys, nas; nas.load_dataset(sys.argv[1]); print('{}')")
                if "error" in r:
                    rows.append([n, "decode", "failed: " + r["error"], "", "", ""])
            elif args.old and n <= args.old_max:
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
            if args.eval:
                for arm, pp in [("scoring, batches (this checkout)", None)] + (
                        [("scoring, whole split (--old)", args.old)] if args.old else []):
                    r = run_child(folder, pp, cache, EVAL_CHILD)  # the same cache, already decoded
                    r.update(images=n, arm=arm)
                    results.append(r)
                    if "error" in r:
                        rows.append([n, arm, "failed: " + r["error"], "", "", ""])
                        continue
                    rows.append([n, arm, f"{r['onnx_test_mb']:.0f} (load {r['imports_and_load_mb']:.0f}, proxy "
                                 f"{r['proxy_mb']:.0f}, torch test {r['torch_test_mb']:.0f})",
                                 f"val {r['val']}, test {r['test']}", "",
                                 f"acc val {r['val_accuracy']:.4f} test {r['test_accuracy_torch']:.4f} / "
                                 f"onnx {r['test_accuracy_onnx']:.4f}"])
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
