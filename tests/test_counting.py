import pytest

import nas

from conftest import sample

# Published figures: MobileNetV2 paper / TF-slim table, MobileNetV3 paper Tables 3-4,
# ShuffleNetV2 paper Table 5 / torchvision, FBNet paper Table 2. (MACs in millions, params in M.)
PUBLISHED = {
    "mobilenet_v2_1.0_224": (300, 3.47),
    "mobilenet_v2_1.4_224": (582, 6.06),
    "mobilenet_v2_1.3_224": (509, 5.34),
    "mobilenet_v2_0.75_224": (209, 2.61),
    "mobilenet_v2_0.5_224": (97, 1.95),
    "mobilenet_v2_0.35_224": (59, 1.66),
    "mobilenet_v2_1.0_96": (56, 3.47),
    "mobilenet_v3_large_1.0_224": (217, 5.4),
    "mobilenet_v3_large_0.75_224": (155, 4.0),
    "mobilenet_v3_small_1.0_224": (56, 2.5),
    "mobilenet_v3_small_0.75_224": (44, 2.0),
    "shufflenet_v2_x0.5_224": (41, 1.37),
    "shufflenet_v2_x1.0_224": (146, 2.28),
    "shufflenet_v2_x1.5_224": (299, 3.50),
    "shufflenet_v2_x2.0_224": (591, 7.39),
    "fbnet_b_1.0_224": (295, 4.5),
}


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
    assert abs(c["macs"] / 1e6 - macs) / macs <= 0.05, c
    # FBNet-B's published 4.5M params uses mobile-vision blocks (no 1x1 conv at e1); ours
    # follows HW-NAS-Bench, which has it: 4.81M, 7% above.
    tol = 0.08 if name.startswith("fbnet") else 0.05
    assert abs(c["params"] / 1e6 - params) / params <= tol, c


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
