"""The one anatomy of an op (``OpSpec.layers()``): the torch modules the builder makes are the
same layers with the same shapes in the same order, and fvcore counts the same MACs per layer."""

import logging

import pytest
import torch
from conftest import sample
from torch import nn

import nas
from nas.models import build_model
from nas.space import Layer, OpSpec

_MAC_OPS = {"conv", "linear", "matmul", "addmm", "bmm", "einsum"}
_ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "none": nn.Identity}


def _weighted(op_module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in op_module.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d))]


def _acts(op_module: nn.Module) -> dict[int, type]:
    """The activation module after each conv of a conv -> batch norm -> activation sequence."""
    out = {}
    for m in op_module.modules():
        if isinstance(m, nn.Sequential) and len(m) == 3 and isinstance(m[0], nn.Conv2d):
            out[id(m[0])] = type(m[2])
    return out


def check_model_against_layers(cand, num_classes=10, resolution=None):
    """Every conv, linear and max-pool module of the built network against the op's layers
    (channels, kernel, stride, groups, input and output sides, activation), and fvcore's MACs of
    each module against the layer's. Returns the number of layers checked."""
    from fvcore.nn import FlopCountAnalysis

    model = build_model(cand, num_classes, resolution=resolution).eval()
    shapes: dict[int, tuple] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.__setitem__(id(m), (i[0].shape, o.shape)))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d))]
    x = torch.zeros(1, 3, model.resolution, model.resolution)
    logging.getLogger("fvcore.nn.jit_analysis").setLevel(logging.ERROR)
    with torch.no_grad():
        model(x)
        fca = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        per_module = fca.by_module_and_operator()
    for h in hooks:
        h.remove()
    checked = 0
    for i, op_module in enumerate(model.layers):
        spec: OpSpec = op_module.spec
        layers = [la for la in spec.layers() if la.has_weights or la.kind == "maxpool"]
        mods = _weighted(op_module)
        assert len(mods) == len(layers), (spec.key, [n for n, _ in mods], layers)
        acts = _acts(op_module)
        for (name, m), la in zip(mods, layers):
            inp, out = shapes[id(m)]
            in_chw = tuple(inp[1:]) if len(inp) == 4 else (inp[1], 1, 1)
            out_chw = tuple(out[1:]) if len(out) == 4 else (out[1], 1, 1)
            where = f"{cand.key} op {i} {spec.key} module {name}: {la}"
            if isinstance(m, nn.Conv2d):
                assert la.kind == ("depthwise" if m.groups == m.in_channels > 1 and m.groups == m.out_channels
                                   else "conv"), where
                assert (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.groups) == (
                    la.cin, la.cout, (la.kernel, la.kernel), (la.stride, la.stride), la.groups), where
                if id(m) in acts:
                    assert acts[id(m)] is _ACTS[la.act], where
            elif isinstance(m, nn.Linear):
                assert la.kind == "linear" and (m.in_features, m.out_features) == (la.cin, la.cout), where
            else:
                assert la.kind == "maxpool" and (m.kernel_size, m.stride) == (la.kernel, la.stride), where
            assert in_chw == (la.cin, la.h, la.w), where
            assert out_chw == (la.cout, la.oh, la.ow), where
            macs = sum(v for k, v in per_module.get(f"layers.{i}.{name}", {}).items() if k in _MAC_OPS)
            assert macs == la.macs, where
            checked += 1
    return checked


def test_references_match_their_layers(space):
    """Every reference network at its own input side."""
    n = sum(check_model_against_layers(space.reference(r)) for r in space.references()[:4])
    assert n > 20


def test_random_candidates_match_their_layers(space):
    """Seeded random candidates, at their own side and at a proxy side (earliest strides at 1)."""
    for j, cand in enumerate(sample(space.name, 6, seed=24)):
        check_model_against_layers(cand, resolution=None if j % 2 else 48)


@pytest.mark.slow
def test_every_reference_and_many_candidates_match_their_layers(space):
    for r in space.references():
        check_model_against_layers(space.reference(r))
    for cand in sample(space.name, 40, seed=7):
        check_model_against_layers(cand)


def test_macs_are_the_sum_over_layers_and_fvcore_agrees(space):
    for cand in [space.reference(space.references()[0])] + sample(space.name, 4, seed=3):
        ops = cand.ops()
        assert all(op.macs == sum(la.macs for la in op.layers()) for op in ops)
        assert nas.count(cand)["macs"] == sum(op.macs for op in ops)


def test_an_inverted_residual_with_squeeze_excite_is_spelled_out():
    op = OpSpec("mbconv", 14, 14, 40, 40, hidden=240, kernel=5, stride=1, se=64, act="hswish", expand=True)
    assert op.layers() == (
        Layer("conv", 40, 240, 14, 14, 14, 14, 1, 1, 1, "hswish"),
        Layer("depthwise", 240, 240, 14, 14, 14, 14, 5, 1, 240, "hswish"),
        Layer("gap", 240, 240, 14, 14, 1, 1, branch="se"),
        Layer("conv", 240, 64, 1, 1, 1, 1, act="relu", branch="se"),
        Layer("conv", 64, 240, 1, 1, 1, 1, act="hsigmoid", branch="se"),
        Layer("scale", 240, 240, 14, 14, 14, 14, branch="se"),
        Layer("conv", 240, 40, 14, 14, 14, 14),
        Layer("add", 40, 40, 14, 14, 14, 14),
    )
    assert op.macs == 196 * 40 * 240 + 196 * 240 * 25 + 2 * 240 * 64 + 196 * 240 * 40
    assert op.layers() is op.layers()  # cached: pricing calls it per op


def test_a_strided_shuffle_unit_has_both_branches():
    op = OpSpec("shuffle", 28, 28, 24, 116, hidden=58, kernel=3, stride=2, act="relu")
    kinds = [(la.branch, la.kind) for la in op.layers()]
    assert kinds == [("main", "conv"), ("main", "depthwise"), ("main", "conv"),
                     ("proj", "depthwise"), ("proj", "conv"), ("", "shuffle")]
    assert op.layers()[-1].out_elems == 14 * 14 * 116


def test_an_unknown_kind_has_no_anatomy():
    with pytest.raises(ValueError, match="no anatomy for op kind 'attention'"):
        OpSpec("attention", 8, 8, 16, 16).layers()
