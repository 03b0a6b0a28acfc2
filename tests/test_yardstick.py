"""The yardstick whole networks are timed with (issue 28, item 5): interleaved rounds in a
seeded order, several statistics per network, self-agreement reported by validation."""

from dataclasses import replace

import pytest

import nas
from nas.latency import (
    STATS,
    YARDSTICK_STAT,
    agreement,
    interleaved_order,
    load_device,
    time_consecutive,
    time_interleaved,
    validate_profile,
)


def test_the_interleaving_order_is_a_seeded_permutation_per_round():
    a = interleaved_order(6, 5, seed=3)
    assert a == interleaved_order(6, 5, seed=3)
    assert a != interleaved_order(6, 5, seed=4)
    assert len(a) == 5 and all(sorted(r) == list(range(6)) for r in a)
    assert len({tuple(r) for r in a}) > 1  # shuffled anew each round, not one order repeated


def test_networks_run_in_that_order_k_runs_each_per_round():
    calls: list[int] = []
    runners = [lambda i=i: calls.append(i) for i in range(4)]
    out = time_interleaved(runners, rounds=3, runs=2, seed=7, warmup=1)
    assert len(out) == 4
    assert calls[:4] == [0, 1, 2, 3]  # one warm-up call each
    want = [i for order in interleaved_order(4, 3, seed=7) for i in order for _ in range(2)]
    assert calls[4:] == want


def test_every_statistic_is_returned_and_ordered():
    work = [lambda n=n: sum(range(n)) for n in (2_000, 20_000, 60_000)]
    out = time_interleaved(work, rounds=4, runs=5, seed=0)
    assert len(out) == 3
    for s in out:
        assert set(STATS) | {"rounds", "runs"} == set(s) and s["rounds"] == 4 and s["runs"] == 5
        assert 0 < s["min"] <= s["p10"] <= s["p25"] <= s["median"]
        assert s["min"] <= s["median_round_min"] <= s["median"] * 10
    assert YARDSTICK_STAT in STATS
    assert out[0]["min"] < out[2]["min"]  # 30x the work is slower, whatever the noise
    assert time_consecutive(work[0], runs=5) > 0


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        time_interleaved([lambda: None], rounds=0)
    with pytest.raises(ValueError):
        agreement([1.0], [1.0, 2.0])


def test_agreement_counts_the_second_timing_within_tolerance_of_the_first():
    assert agreement([1.0, 1.0, 1.0, 1.0], [1.05, 0.95, 1.2, 0.85]) == 0.5
    assert agreement([1.0, 1.0], [1.04, 0.97], tol=0.05) == 1.0


@pytest.mark.slow
def test_validation_reports_the_yardsticks_self_agreement_beside_the_predictor():
    """Real timings in onnxruntime (host), tiny rounds: the figures' structure, not their values."""
    prof = load_device("host")
    raw: dict = {}
    res = validate_profile(prof, ["shufflenetv2"], 2, seed=5, raw_out=raw, rounds=2, runs=2)
    assert res["samples"] == 2 and res["yardstick"].startswith(f"{YARDSTICK_STAT} of 2 interleaved rounds")
    for prec in ("f32", "i8"):
        r = res[prec]
        for k in ("within_5pct", "within_10pct", "yardstick_within_10pct", "yardstick_within_5pct"):
            assert 0.0 <= r[k] <= 1.0
        assert r["yardstick_within_5pct"] <= r["yardstick_within_10pct"]
        assert r["mape_pct"] >= 0
        first, second = raw[prec][3], raw[prec][4]
        assert len(first) == len(second) == 2 and all(v > 0 for v in first + second)
        assert r["yardstick_within_10pct"] == round(agreement(first, second), 3)
    # nas devices shows the yardstick's agreement beside the predictor's
    text = replace(prof, validation=res).validation_text()
    assert f"the yardstick against itself: {res['f32']['yardstick_within_10pct'] * 100:.0f}%" in text
    # every statistic of both timings of the 4 networks is kept
    assert len(raw["stats"]) == 8 and {s["repeat"] for s in raw["stats"]} == {0, 1}
    assert {s["key"] for s in raw["stats"]} == {c.replace_bits(b).key for c in
                                                nas.load_space("shufflenetv2").sample_many(2, 5) for b in (32, 8)}
