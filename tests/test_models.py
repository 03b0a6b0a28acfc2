import pytest
import torch
from conftest import SPACES, sample

import nas


@pytest.mark.parametrize("space_name", SPACES)
def test_random_candidates_build_and_run_at_proxy_and_target_resolution(space_name):
    for cand in sample(space_name, 3, seed=4):
        for res in (32, cand.resolution):
            model = nas.build_model(cand, num_classes=10, resolution=res).eval()
            with torch.no_grad():
                y = model(torch.randn(2, 3, res, res))
            assert y.shape == (2, 10) and torch.isfinite(y).all()


def test_every_reference_builds_at_proxy_resolution(space):
    for name in space.references():
        model = nas.build_model(space.reference(name), num_classes=10, resolution=32).eval()
        with torch.no_grad():
            assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_grayscale_input():
    cand = sample("mobilenetv3", 1)[0]
    model = nas.build_model(cand, num_classes=10, in_channels=1, resolution=28).eval()
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_proxy_build_keeps_weight_shapes():
    """The proxy network differs only in strides: same parameters, same shapes."""
    cand = sample("mobilenetv2", 1, seed=9)[0]
    a = nas.build_model(cand, 10, resolution=32).state_dict()
    b = nas.build_model(cand, 10).state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}


def test_last_feature_map_at_proxy_resolution(space):
    from nas.space import PROXY_MIN_FEATURE

    for cand in sample(space.name, 5, seed=1):
        gap = [o for o in cand.ops(resolution=32) if o.kind == "gap"][0]
        target_gap = [o for o in cand.ops() if o.kind == "gap"][0]
        assert gap.h >= min(PROXY_MIN_FEATURE, target_gap.h)
        assert gap.h < 2 * max(PROXY_MIN_FEATURE, 1) or gap.h == target_gap.h  # no stride dropped needlessly


def test_pruned_channels_are_physically_absent():
    base = "mobilenetv2:r224:w1:k3e1/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6"
    pruned = "mobilenetv2:r224:w1:k3e1/k3e6p0.5,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6"
    m_full, m_pruned = nas.build_model(base, 10), nas.build_model(pruned, 10)
    expand_full = m_full.layers[2].body[0][0].weight.shape
    expand_pruned = m_pruned.layers[2].body[0][0].weight.shape
    assert expand_full[0] == 96 and expand_pruned[0] == 48
    n_full = sum(p.numel() for p in m_full.parameters())
    n_pruned = sum(p.numel() for p in m_pruned.parameters())
    assert n_pruned < n_full


def test_ops_carry_bits():
    cand = sample("shufflenetv2", 1, seed=2)[0]
    model = nas.build_model(cand, 10)
    block_bits = [b.bits for b in cand.blocks]
    built = [m.bits for m in model.layers if m.spec.kind in ("shuffle", "shuffle_x")]
    assert built == block_bits
    edge = 8 if cand.is_quantized else 32
    assert model.layers[0].bits == edge and model.layers[-1].bits == edge


def test_model_is_exactly_the_ops():
    cand = sample("fbnet", 1, seed=3)[0]
    model = nas.build_model(cand, 10, resolution=32)
    assert [m.spec for m in model.layers] == cand.ops(resolution=32, num_classes=10)
