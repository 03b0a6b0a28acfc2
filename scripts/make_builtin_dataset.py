"""Make nas/data/_builtin/fashion_mnist_subset.npz, the dataset shipped inside the package.

Source: Debian's dataset-fashion-mnist package (apt-get install -y dataset-fashion-mnist),
the official Fashion-MNIST idx files (Xiao, Rasul, Vollgraf 2017; MIT licence).
A stratified, seeded subset: 600 training and 100 test images per class (6,000 + 1,000).

    python scripts/make_builtin_dataset.py [--src /usr/share/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
           "sneaker", "bag", "ankle boot"]


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def stratified(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    idx = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(idx))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--train-per-class", type=int, default=600)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "nas" / "data" / "_builtin"
                                         / "fashion_mnist_subset.npz"))
    args = ap.parse_args()
    src = Path(args.src)
    xtr, ytr = read_idx(src / "train-images-idx3-ubyte.gz"), read_idx(src / "train-labels-idx1-ubyte.gz")
    xte, yte = read_idx(src / "t10k-images-idx3-ubyte.gz"), read_idx(src / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    itr = stratified(ytr, args.train_per_class, rng)
    ite = stratified(yte, args.test_per_class, rng)
    np.savez_compressed(
        args.out, x_train=xtr[itr][..., None], y_train=ytr[itr].astype(np.int64),
        x_test=xte[ite][..., None], y_test=yte[ite].astype(np.int64),
        src_index_train=itr, src_index_test=ite, class_names=np.array(CLASSES))
    print(f"wrote {args.out}: {len(itr)} train, {len(ite)} test, "
          f"{Path(args.out).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
