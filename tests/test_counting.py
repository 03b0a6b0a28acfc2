import pytest
from conftest import sample

import nas


def _published():
    out = {}
    for space in nas.space_names():
        s = nas.load_space(space)
        for name in s.references():
            if s.published(name):
                out[name] = (s.published(name)["macs_m"], s.published(name)["params_m"])
    return out


PUBLISHED = _published()


def test_published_figures_are_recorded():
    assert len(PUBLISHED) >= 30
    for name in ("mobilenet_v2_1.0_224", "mobilenet_v3_large_1.0_224", "shufflenet_v2_x1.0_224"):
        assert name in PUBLISHED


def _ref(name):
    for space in nas.space_names():
        s = nas.load_space(space)
        if name in s.references():
            return s.reference(name)
    raise KeyError(name)


@pytest.mark.parametrize("name", ["mobilenet_v2_1.0_224", "mobilenet_v3_large_1.0_224",
                                  "shufflenet_v2_x1.0_224"])
def test_required_published_figures_within_5_percent(name):
    macs, params = PUBLISHED[name]
    c = nas.count(_ref(name))
    assert abs(c["macs"] / 1e6 - macs) / macs <= 0.05, c
    assert abs(c["params"] / 1e6 - params) / params <= 0.05, c


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_macs(name):
    macs, params = PUBLISHED[name]
    c = nas.count(_ref(name))
    # published MACs are whole millions (TF-slim truncates): allow 5% or that truncation
    assert abs(c["macs"] / 1e6 - macs) / macs <= 0.05 or 0 <= c["macs"] / 1e6 - macs < 1, c
    # FBNet-B's published 4.5M params uses mobile-vision blocks (no 1x1 conv at e1); ours
    # follows HW-NAS-Bench, which has it: 4.81M, 7% above.
    tol = 0.08 if name.startswith("fbnet") else 0.05
    assert abs(c["params"] / 1e6 - params) / params <= tol, c


def test_mobilenet_v2_table_matches_exactly_after_truncation():
    """Every MobileNetV2 figure of the TF-slim table, to the million."""
    n = 0
    for name, (macs, _) in PUBLISHED.items():
        if name.startswith("mobilenet_v2_"):
            assert int(nas.count(_ref(name))["macs"] // 1_000_000) == macs, name
            n += 1
    assert n == 22


def test_fvcore_agrees_with_analytic_macs(space):
    for cand in sample(space.name, 3, seed=8):
        assert nas.count(cand)["macs"] == sum(op.macs for op in cand.ops())


def test_bytes_follow_bit_widths():
    ref = _ref("mobilenet_v2_1.0_224")
    f32, i8, i4 = (nas.count(ref.replace_bits(b))["bytes"] for b in (32, 8, 4))
    assert f32 > i8 > i4
    assert 3.5 < f32 / i8 < 4.0  # biases stay 32-bit
    params = nas.count(ref)["params"]
    assert f32 < params * 4  # batch norm folded into biases
