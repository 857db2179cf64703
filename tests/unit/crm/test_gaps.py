"""Id gaps of a timeline scan: kept open for a while (PostgreSQL may still commit them)."""

from __future__ import annotations

from crm_sync.outbound.gaps import Gaps


def test_gaps_between_seen_ids_stay_open_until_they_expire() -> None:
    gaps = Gaps(wait_s=10)
    gaps.note(after=100, ids=[101, 104, 105, 109], now=0.0)
    assert gaps.open(now=5.0) == [(102, 103), (106, 108)]
    assert gaps.cursor(head=109) == 101
    assert gaps.open(now=10.0) == []
    assert gaps.cursor(head=109) == 109


def test_a_gap_right_after_the_cursor_holds_it_back() -> None:
    gaps = Gaps(wait_s=10)
    gaps.note(after=100, ids=[103], now=0.0)
    assert gaps.cursor(head=103) == 100


def test_without_a_wait_nothing_is_tracked() -> None:
    gaps = Gaps(wait_s=0)
    gaps.note(after=0, ids=[5, 9], now=0.0)
    assert gaps.open(now=0.0) == []
    assert gaps.cursor(head=9) == 9


def test_too_many_gaps_are_merged_from_the_lowest() -> None:
    gaps = Gaps(wait_s=10, max_ranges=2)
    gaps.note(after=0, ids=[2, 4, 6, 8], now=0.0)
    assert gaps.open(now=1.0) == [(1, 5), (7, 7)]
    assert gaps.cursor(head=8) == 0
