"""Id gaps of a timeline scan on PostgreSQL: open while a transaction that may fill them runs."""

from __future__ import annotations

from crm_sync.outbound.gaps import Gaps, Snapshot


def snap(xmin: int, *running: int) -> Snapshot:
    return Snapshot(xmin, max(running, default=xmin) + 1, running)


def test_the_text_form_of_a_snapshot_is_read() -> None:
    assert Snapshot.parse("740:745:740,742") == Snapshot(740, 745, (740, 742))
    assert Snapshot.parse("750:750:") == Snapshot(750, 750, ())


def test_a_gap_stays_open_until_the_transactions_running_when_it_was_seen_end() -> None:
    gaps = Gaps(max_wait_s=600)
    gaps.note(after=100, ids=[101, 104, 105, 109], snapshot=snap(700, 700, 703), now=0.0)
    assert gaps.cursor(head=109) == 101
    assert gaps.settled(snap(701, 701, 703, 710), now=1.0) == []  # 703 still runs
    assert gaps.settled(snap(704, 710), now=2.0) == [(102, 103), (106, 108)]  # read once more
    assert gaps.cursor(head=109) == 109
    assert gaps.settled(snap(720), now=3.0) == []


def test_gaps_seen_with_nothing_running_are_read_once_at_the_next_scan() -> None:
    gaps = Gaps(max_wait_s=600)
    gaps.note(after=0, ids=[3], snapshot=snap(50), now=0.0)
    assert gaps.cursor(head=3) == 0
    assert gaps.settled(snap(50), now=0.1) == [(1, 2)]


def test_a_transaction_open_too_long_is_given_up() -> None:
    gaps = Gaps(max_wait_s=600)
    gaps.note(after=0, ids=[3], snapshot=snap(10, 10), now=0.0)
    assert gaps.settled(snap(10, 10), now=599.0) == []
    assert gaps.settled(snap(10, 10), now=600.0) == [(1, 2)]


def test_sqlite_tracks_nothing() -> None:
    gaps = Gaps(max_wait_s=0)
    gaps.note(after=0, ids=[5, 9], snapshot=snap(1, 1), now=0.0)
    assert gaps.cursor(head=9) == 9
    assert gaps.settled(None, now=0.0) == []


def test_too_many_gaps_are_merged_from_the_lowest() -> None:
    gaps = Gaps(max_wait_s=600, max_ranges=2)
    gaps.note(after=0, ids=[2, 4, 6, 8], snapshot=snap(9, 9), now=0.0)
    assert len(gaps) == 2
    assert gaps.cursor(head=8) == 0
    assert gaps.settled(snap(10), now=1.0) == [(1, 5), (7, 7)]
