import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

# Hermetic: every cache hwnas writes (host latency tables, datasets) goes to a folder of this
# test session, never the user's ~/.cache/hwnas. Set before nas is imported; Ray workers and
# subprocesses inherit it.
os.environ["HWNAS_CACHE"] = tempfile.mkdtemp(prefix="hwnas-test-cache-")
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="hwnas-test-mpl-"))
# benchmark helpers (zerocost.py, l1_prune.py) are tested from benchmarks/
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import pytest  # noqa: E402
import torch  # noqa: E402

import nas  # noqa: E402

torch.set_num_threads(1)

SPACES = nas.space_names()


def sample(space_name: str, n: int, seed: int = 0):
    space = nas.load_space(space_name)
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(n)]


@pytest.fixture(params=SPACES)
def space(request):
    return nas.load_space(request.param)


TINY_PROXY = {"max_train_images": 192, "epochs": 1.0, "max_val_images": 150, "bn_recalibration_batches": 1,
              "batch_size": 64}


def png_folder(root, classes=("cat", "dog"), n=6, size=12, mode="RGB"):
    """A folder of seeded random images, one subfolder per class."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")
    return root


def small_builtin(path: Path, train_per_class: int = 100, test_per_class: int = 30) -> Path:
    """A smaller copy of the built-in data as an .npz (the first images of each class, class names
    kept): for tests that train and evaluate winners, whose cost grows with the splits."""
    import numpy as np

    from nas.data import BUILTIN

    with np.load(BUILTIN, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        y = arrays[f"y_{split}"]
        keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)]))
        for k in [k for k in arrays if k.endswith(f"_{split}")]:
            arrays[k] = arrays[k][keep]
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray (2 CPUs, no dashboard) shared by the tests that search; shut down at the end."""
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def run5(tmp_path_factory, ray_session):
    """One real 5-trial search shared by the tests that only read its folder: (tmp, result)."""
    from nas.api import run_search
    from nas.run import SearchConfig

    tmp = tmp_path_factory.mktemp("run5")
    cfg = SearchConfig(device="pixel7", space="mobilenetv3", trials=5, workers=2, data="builtin", out=str(tmp),
                       name="run", references=1, proxy=dict(TINY_PROXY), seed=0, proxy_kind="train")
    return tmp, run_search(cfg)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, ray_session):
    """One real 3-trial search on the smaller built-in data (small_builtin: 1,000 training and 300
    test images, on which every winner trains and tests), shared by the modules that distill or
    export its winner: each works on its own copy (copy_run), never on this folder. (data, run)."""
    from nas.api import run_search
    from nas.run import SearchConfig

    out = tmp_path_factory.mktemp("small-run")
    data = small_builtin(out / "small.npz")
    res = run_search(SearchConfig(trials=3, workers=2, out=str(out), name="r", references=0, proxy=dict(TINY_PROXY),
                                  data=str(data), proxy_kind="train"))
    return data, res.run_dir


def copy_run(run_dir: Path, dest: Path) -> Path:
    """A copy of a finished run folder (its storage is relative: the copy reads its own study)."""
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns(".lock"))
    return dest
