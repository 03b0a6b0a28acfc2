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

# The EfficientNet-Lite README's MAdds also count about three operations per output element of
# every convolution and residual add (batch norm's scale and shift and the ReLU6, as a training
# graph has them): with them our operator list lands within 0.25% of all five figures, without
# them 3.3-5.4% below (385.2M for Lite0, as independent PyTorch ports count it). The README does
# not say how it counts; BENCHMARKS.md has the fit.
LITE_OPS_PER_ELEMENT = 3


def _elementwise(cand):
    """Output elements of every convolution, depthwise convolution and residual add."""
    return sum(la.out_elems for op in cand.ops() for la in op.layers() if la.kind in ("conv", "depthwise", "add"))


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
    if name.startswith("efficientnet_lite"):
        c["macs"] += LITE_OPS_PER_ELEMENT * _elementwise(_ref(name))
    # published MACs are whole millions (TF-slim truncates): allow 5% or that truncation
    assert abs(c["macs"] / 1e6 - macs) / macs <= 0.05 or 0 <= c["macs"] / 1e6 - macs < 1, c
    # FBNet-B's published 4.5M params uses mobile-vision blocks (no 1x1 conv at e1); ours
    # follows HW-NAS-Bench, which has it: 4.81M, 7% above.
    tol = 0.08 if name.startswith("fbnet") else 0.05
    assert abs(c["params"] / 1e6 - params) / params <= tol, c


@pytest.mark.parametrize("name", [f"efficientnet_lite{i}_{r}" for i, r in enumerate([224, 240, 260, 280, 300])])
def test_efficientnet_lite_within_3_percent_of_the_readme(name):
    """Lite0..Lite4 against the official table: params within 3%; MAdds within 3% when counted
    as the README counts them (see LITE_OPS_PER_ELEMENT), and the bare MACs 3-6% below it."""
    macs, params = PUBLISHED[name]
    ref = _ref(name)
    c = nas.count(ref)
    assert abs(c["params"] / 1e6 - params) / params <= 0.03, c
    assert abs((c["macs"] + LITE_OPS_PER_ELEMENT * _elementwise(ref)) / 1e6 - macs) / macs <= 0.03, c
    assert 0.94 <= c["macs"] / 1e6 / macs <= 0.97, c


def test_efficientnet_lite_stem_and_head_do_not_scale():
    """Lite4 (width 1.4) keeps the 32-channel stem and the 1280-channel head; its stages scale."""
    ops = _ref("efficientnet_lite4_300").ops()
    assert ops[0].cout == 32 and ops[1].cin == 32
    head = [op for op in ops if op.kind == "conv"][-1]
    assert head.cout == 1280 and head.cin == 448  # 320 x 1.4
    assert ops[1].cout == 24  # 16 x 1.4 = 22.4 -> 24


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
