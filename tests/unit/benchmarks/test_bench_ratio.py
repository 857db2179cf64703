"""The side-by-side mechanism the benchmarks in scripts/ share (pure: no timing asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from bench_common import (
    Comparison,
    LoadWatch,
    Pair,
    alternate,
    alternate_many,
    schedule,
)


def test_order_of_runs_swaps_every_round_so_drift_favours_neither_side() -> None:
    assert list(schedule(3)) == [
        (0, "anchor"),
        (0, "subject"),
        (1, "subject"),
        (1, "anchor"),
        (2, "anchor"),
        (2, "subject"),
    ]


def test_no_rounds_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one round"):
        list(schedule(0))


def test_median_is_of_the_per_round_ratios_not_a_ratio_of_medians() -> None:
    pairs = (Pair(1.0, 3.0), Pair(10.0, 20.0), Pair(2.0, 2.0))
    comparison = Comparison("planner", "floor", pairs)
    assert comparison.ratios() == [3.0, 2.0, 1.0]
    assert comparison.median() == 2.0  # the ratio of medians would be 3.0 / 2.0 = 1.5


def test_speed_states_the_ratio_the_other_way_round() -> None:
    comparison = Comparison("claims", "bare loop", (Pair(1.0, 4.0), Pair(1.0, 2.0)), speed=True)
    assert comparison.median() == pytest.approx(0.375)
    assert "(speed): 0.38x" in comparison.line()


def test_line_names_both_sides_the_rounds_and_the_goal() -> None:
    line = Comparison("import", "COPY", (Pair(2.0, 5.0),) * 3, goal="<= 3x").line()
    assert line.startswith("ratio import / COPY (time): 2.50x median of 3 rounds")
    assert "[2.50, 2.50, 2.50]" in line
    assert line.endswith("goal <= 3x")


def test_comparison_without_rounds_is_an_error() -> None:
    with pytest.raises(ValueError, match="no rounds"):
        Comparison("x", "y", ()).median()


def test_alternate_pairs_each_round_s_own_two_runs() -> None:
    calls: list[str] = []
    anchor_times = iter([1.0, 2.0, 3.0])
    subject_times = iter([10.0, 20.0, 30.0])

    def anchor() -> float:
        calls.append("a")
        return next(anchor_times)

    def subject() -> float:
        calls.append("s")
        return next(subject_times)

    load = LoadWatch()
    pairs = alternate(anchor, subject, rounds=3, load=load)
    assert calls == ["a", "s", "s", "a", "a", "s"]
    assert pairs == (Pair(1.0, 10.0), Pair(2.0, 20.0), Pair(3.0, 30.0))
    assert len(load.samples) == 7  # the start and after each run
    assert "cores" in load.line()


def test_several_subjects_share_the_anchor_run_of_their_round_and_swap_places() -> None:
    assert [side for n, side in schedule(2, ["a", "b"])] == [
        "anchor",
        "a",
        "b",
        "b",
        "a",
        "anchor",
    ]
    anchor_times = iter([1.0, 2.0])
    a_times = iter([3.0, 8.0])
    b_times = iter([5.0, 4.0])
    pairs = alternate_many(
        lambda: next(anchor_times), {"a": lambda: next(a_times), "b": lambda: next(b_times)}, 2
    )
    assert pairs == {"a": (Pair(1.0, 3.0), Pair(2.0, 8.0)), "b": (Pair(1.0, 5.0), Pair(2.0, 4.0))}
