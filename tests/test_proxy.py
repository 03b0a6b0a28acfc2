import math

import numpy as np
import pytest
import torch
from conftest import sample

import nas
from nas.data import load_dataset
from nas.errors import DatasetError
from nas.models import ActFakeQuant, apply_fake_quant, strip_fake_quant
from nas.train import ProxyBudget, evaluate_proxy


@pytest.fixture(scope="module")
def small():
    return load_dataset("builtin").subset(train=1000, val=300)


def test_proxy_learns_and_is_deterministic(small):
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224").replace_bits(8)
    a = evaluate_proxy(cand, small, seed=0, epochs=3, max_train_images=900)
    b = evaluate_proxy(cand, small, seed=0, epochs=3, max_train_images=900)
    assert not a.failed and a.accuracy == b.accuracy and a.loss == b.loss
    assert a.accuracy > 0.3  # 10 classes: chance is 0.1
    assert a.steps == 3 * math.ceil(900 / ProxyBudget().batch_size) and a.images_per_second > 0
    assert a.seconds >= a.train_seconds + a.eval_seconds * 0.99


def test_nan_loss_is_a_failed_result_not_a_crash(small):
    cand = sample("mobilenetv2", 1)[0]
    r = evaluate_proxy(cand, small, epochs=1, max_train_images=256, lr=1e12)
    assert r.failed and "non-finite" in r.reason and math.isnan(r.accuracy)


def test_fake_quant_weights_take_few_levels():
    cand = nas.load_space("mobilenetv2").reference("mobilenet_v2_0.35_96").replace_bits(4)
    model = apply_fake_quant(nas.build_model(cand, 10, resolution=32))
    conv = model.layers[3].body[0][0]  # a block's expansion conv, 4 bits
    w = conv.weight.detach()
    for ch in w.reshape(w.shape[0], -1)[:5]:
        assert len(torch.unique(ch)) <= 2 ** 4 - 1
    x = torch.randn(2, 3, 32, 32)
    y = model(x)
    y.sum().backward()  # straight-through: gradients reach the float weights
    assert conv.parametrizations.weight.original.grad is not None
    strip_fake_quant(model)
    assert not hasattr(conv, "act_quant")


def test_fake_quant_trains_under_bf16_autocast():
    """The running activation range stays float32 when autocast hands it bfloat16 activations
    (it raised "expected dtype float for `end`" in lerp before)."""
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224").replace_bits(8)
    model = apply_fake_quant(nas.build_model(cand, 10, resolution=32)).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(4, 3, 32, 32))
    assert out.dtype == torch.bfloat16
    torch.nn.functional.cross_entropy(out.float(), torch.arange(4)).backward()
    ranges = [m for m in model.modules() if isinstance(m, ActFakeQuant)]
    assert ranges and all(m.lo.dtype == torch.float32 and bool(m.initialized) for m in ranges)


def test_float_candidates_are_not_quantized():
    cand = sample("shufflenetv2", 1)[0].replace_bits(32)
    model = apply_fake_quant(nas.build_model(cand, 10, resolution=32))
    assert not any(hasattr(m, "act_quant") for m in model.modules())


def test_batch_too_large_for_memory_is_a_failed_result(small):
    cand = nas.load_space("mobilenetv2").reference("mobilenet_v2_1.4_224")
    r = evaluate_proxy(cand, small, batch_size=512, memory_limit_bytes=50_000_000)
    assert r.failed and "lower batch_size" in r.reason and "GB" in r.reason


def test_memory_estimate_grows_with_batch(small):
    from nas.train import estimate_training_bytes

    cand = sample("mobilenetv3", 1)[0]
    a, b = estimate_training_bytes(cand, small, 32), estimate_training_bytes(cand, small, 64)
    assert 0 < a < b < 2.1 * a


def test_bad_budget_is_rejected(small):
    with pytest.raises(ValueError, match="bad proxy budget"):
        evaluate_proxy(sample("mobilenetv2", 1)[0], small, batch_size=0)


def test_proxy_resolution_follows_the_candidate_resolution(small):
    from nas.train import proxy_resolution

    space = nas.load_space("mobilenetv3")
    ref = space.reference("mobilenet_v3_small_1.0_224")
    assert proxy_resolution(ref, 32) == 32
    assert proxy_resolution(ref.replace(resolution=128), 32) == 18
    assert proxy_resolution(ref.replace(resolution=160), 28) == 20
    low = small.at_resolution(18)
    assert low.x_train.shape[1:3] == (18, 18) and low.x_train.dtype == np.uint8
    assert low is small.at_resolution(18) and small.at_resolution(small.resolution) is small
    assert np.array_equal(low.y_train, small.y_train) and np.array_equal(low.mean, small.mean)
    x18, y18 = small.test_arrays(resolution=18)
    assert np.array_equal(x18, low.test_arrays()[0]) and np.array_equal(y18, small.test_arrays()[1])
    x20 = small.test_arrays(resolution=20)[0]  # not cached: resized on the fly, same recipe
    assert x20.shape[1:] == (small.in_channels, 20, 20) and x20.dtype == np.float32
    assert np.allclose(x20, small.at_resolution(20).test_arrays()[0])
    with pytest.raises(DatasetError, match="positive whole number"):
        small.test_arrays(resolution=0)
    r = evaluate_proxy(ref.replace(resolution=128).replace_bits(8), small, epochs=1, max_train_images=128)
    assert r.resolution == round(small.resolution * 128 / 224) and not r.failed
