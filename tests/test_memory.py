"""Peak memory and size as budgets: the computed figure, and a search that enforces them."""

import dataclasses

import pytest
from conftest import TINY_PROXY

import nas
from nas.space import OpSpec, activation_bytes, memory_bytes, peak_activation_bytes


def test_an_inverted_residual_holds_its_input_and_expanded_map_at_once():
    # 8x8, 16 -> 16 channels, expanded to 64, stride 1: residual, so the input lives to the add
    op = OpSpec("mbconv", 8, 8, 16, 16, hidden=64, kernel=3, stride=1, expand=True, bits=32)
    x, e, d, y = 64 * 16, 64 * 64, 64 * 64, 64 * 16
    assert activation_bytes(op) == 4 * max(x + e, e + d + x, d + y + x, x + y)
    assert activation_bytes(dataclasses.replace(op, bits=8)) == activation_bytes(op) // 4
    conv = OpSpec("conv", 224, 224, 3, 16, kernel=3, stride=2, bits=32)
    assert activation_bytes(conv) == 4 * (224 * 224 * 3 + 112 * 112 * 16)


def test_memory_is_activations_plus_weights_and_grows_with_the_input_side():
    space = nas.load_space("mobilenetv3")
    small = space.reference("mobilenet_v3_small_1.0_224")
    ops = small.ops(num_classes=10)
    assert memory_bytes(small, 1000, num_classes=10) == peak_activation_bytes(ops) + 1000
    lower = small.replace(resolution=128)
    assert memory_bytes(lower, 0, num_classes=10) < memory_bytes(small, 0, num_classes=10)
    assert memory_bytes(small, 0, 10, float_model=True) > memory_bytes(small.replace_bits(8), 0, 10)


def test_memory_and_size_budgets_keep_over_budget_candidates_untrained(tmp_path, ray_session):
    from nas.api import run_search
    from nas.run import SearchConfig
    from nas.search import CONSTRAINT_NAMES_ATTR, constraints_of, open_study, read_trials

    cfg = SearchConfig(trials=3, workers=2, data="builtin", out=str(tmp_path), name="m", references=0,
                       distill=False, proxy=dict(TINY_PROXY), memory_kb=900.0, size_kb=800.0,
                       objectives=("acc", "latency", "memory", "size"))
    res = run_search(cfg)
    study = open_study(res.study_name, res.storage)
    assert study.metric_names == ["accuracy", "latency_ms", "memory_mb", "size_mb"]
    rows = read_trials(study)
    trained = [r for r in rows if r.status == "evaluated"]
    over = [r for r in rows if r.status == "over_budget"]
    assert len(trained) == 3 and over
    for r in trained:
        assert r.memory <= 900 * 1024 and r.bytes <= 800 * 1024
    for r in over:
        assert ("memory" in r.reason and r.memory > 900 * 1024) or ("size" in r.reason and r.bytes > 800 * 1024) \
            or "latency" in r.reason
        cons = constraints_of(study.trials[r.number], study.user_attrs[CONSTRAINT_NAMES_ATTR])
        assert list(cons) == ["latency_over_budget_ms", "size_over_budget_kb", "memory_over_budget_kb"]
        assert any(v > 0 for v in cons.values())
        assert cons["memory_over_budget_kb"] == pytest.approx(r.memory / 1024 - 900)
    html = (tmp_path / "m" / "report.html").read_text()
    assert "Peak memory at batch 1" in html and "<th>memory KB</th>" in html


@pytest.mark.parametrize("flag", ["--memory-kb", "--size-kb"])
def test_a_bad_memory_or_size_budget_is_one_line(flag):
    from nas.errors import SearchError
    from nas.run import SearchConfig

    with pytest.raises(SearchError, match=flag):
        SearchConfig(**{flag[2:].replace("-", "_"): -1.0}).validate()
