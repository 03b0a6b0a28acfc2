"""nas.search._front and nas.winner._pick: the Pareto front, its hypervolume and the --pick rules."""

import pytest

from nas.errors import DistillError
from nas.search import TrialRow, hypervolume_2d, pareto_front
from nas.winner import pick_winner


def _row(n, acc, lat, status="evaluated", key=None, size=0):
    return TrialRow(n, "COMPLETE", status, key or f"k{n}", acc, lat, 1, 1, size, "", "", 32, 1.0, "", "")


def test_hypervolume_and_front_on_known_points():
    assert hypervolume_2d([], 10) == 0
    assert hypervolume_2d([(0.5, 5.0)], 10) == pytest.approx(0.25)
    # staircase: (0.2 from 0.1 to 0.5) + (0.6 from 0.5 to 1.0)
    assert hypervolume_2d([(0.2, 1.0), (0.6, 5.0), (0.1, 8.0), (0.9, 20.0)], 10) == pytest.approx(0.2 * 0.4 + 0.6 * 0.5)
    rows = [_row(0, 0.2, 1.0), _row(1, 0.6, 5.0), _row(2, 0.1, 8.0), _row(3, 0.9, 20.0),
            _row(4, 0.0, 2.0, status="over_budget"), _row(5, 0.6, 5.0, key="k1", status="duplicate")]
    front = pareto_front(rows, 10)
    assert [r.number for r in front] == [0, 1]


def test_pick_rules():
    rows = [_row(0, 0.50, 1.0), _row(1, 0.70, 2.0), _row(2, 0.72, 6.0), _row(3, 0.90, 20.0),
            _row(4, 0.99, 3.0, status="failed"), _row(5, 0.30, 0.5)]
    assert pick_winner(rows, 10, "best").number == 2
    assert pick_winner(rows, 10, "latency<=2").number == 1
    assert pick_winner(rows, 10, "latency <= 1.5").number == 0
    assert pick_winner(rows, 10, "trial=3").number == 3  # a rule may pick outside the budget
    assert pick_winner(rows, 10, "knee").number == 1  # the front bends at (2 ms, 0.70)
    with pytest.raises(DistillError, match="no trained trial at or below 0.1 ms"):
        pick_winner(rows, 10, "latency<=0.1")
    with pytest.raises(DistillError, match="unknown --pick rule"):
        pick_winner(rows, 10, "fastest")
    with pytest.raises(DistillError, match="trial 4 is not a trained trial"):
        pick_winner(rows, 10, "trial=4")


def test_with_rungs_a_promoted_trial_dominates_only_by_being_better_at_the_common_rung():
    from nas.search import TrialRow, pareto_front

    def row(n, acc, lat, rungs):
        return TrialRow(n, "COMPLETE", "evaluated", f"k{n}", acc, lat, 1, 1, 1, "", "", 224, 1.0, "", "",
                        rung=len(rungs) - 1, rung_accuracy=tuple(rungs))
    fast_promoted = row(0, 0.40, 1.0, [0.15, 0.30, 0.40])  # 9 epochs: 40%, but 15% at 1 epoch
    slow_base = row(1, 0.20, 2.0, [0.20])  # 20% at 1 epoch: more accurate at the common rung
    weak_base = row(2, 0.12, 1.5, [0.12])  # worse than the promoted trial at 1 epoch, and slower
    front = pareto_front([fast_promoted, slow_base, weak_base], budget_ms=3.0)
    assert [r.number for r in front] == [0, 1]
