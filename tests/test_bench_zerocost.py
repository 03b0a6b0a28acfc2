"""NASWOT zero-cost score (benchmarks/zerocost.py)."""

import math
import random

import numpy as np
from zerocost import naswot  # benchmarks/ (conftest puts it on the path)

import nas
from nas.data import Dataset, load_dataset


def _dataset(x_train: np.ndarray) -> Dataset:
    y = np.arange(len(x_train)) % 10
    return Dataset("t", "test", x_train, y, x_train[:10], y[:10], x_train[:10], y[:10],
                   [str(i) for i in range(10)])


def test_naswot_is_deterministic_and_finite_on_real_images():
    ds = load_dataset("builtin")
    cand = nas.load_space("mobilenetv3").sample(random.Random(0))
    a, b = naswot(cand, ds, seed=0), naswot(cand, ds, seed=0)
    assert a == b and math.isfinite(a)
    assert naswot(cand, ds, seed=1) != a  # another minibatch and init


def test_naswot_is_minus_infinity_when_inputs_are_identical():
    """Identical images give identical activation codes: the kernel has rank 1."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(1, 16, 16, 3), dtype=np.uint8)
    noise = rng.integers(0, 256, size=(64, 16, 16, 3), dtype=np.uint8)
    cand = nas.load_space("mobilenetv2").sample(random.Random(1))
    same = _dataset(np.repeat(img, 64, axis=0))
    same.mean, same.std = np.full(3, 0.4, np.float32), np.full(3, 0.2, np.float32)
    assert naswot(cand, same, resolution=16) == float("-inf")
    assert math.isfinite(naswot(cand, _dataset(noise), resolution=16))
