"""Ids a scan of the timeline skipped that may still appear (pure).

PostgreSQL hands out ids when a row is inserted, and the transaction may commit after a later
id is already visible; an INSERT ... ON CONFLICT DO NOTHING or a rollback also burns ids that
never appear. Sequence values only grow, so an id below the newest one seen can only belong to
a transaction that was in progress right after the scan (``pg_current_snapshot()``): once every
one of those has finished (the snapshot ``xmin`` has passed them), the gap is settled; it is
read once more, then forgotten. (SQLite writes one transaction at a time: ids become visible in
order and nothing is tracked.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Snapshot:
    """``pg_current_snapshot()``: transactions below ``xmin`` are finished, ``xip`` run."""

    xmin: int
    xmax: int
    xip: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """'xmin:xmax:xip1,xip2' (the text form of a pg_snapshot)."""
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), tuple(int(x) for x in xip.split(",") if x))


@dataclass(frozen=True, slots=True)
class Gap:
    lo: int
    hi: int
    blocker: int  # the newest transaction that may still fill it (-1: none)
    seen_at: float


class Gaps:
    def __init__(self, max_wait_s: float, *, max_ranges: int = 100_000) -> None:
        self.max_wait_s = max_wait_s  # 0: nothing is tracked (SQLite)
        self.max_ranges = max_ranges
        self._gaps: list[Gap] = []

    def note(self, after: int, ids: Sequence[int], snapshot: Snapshot | None, now: float) -> None:
        """A scan of ids above ``after`` returned ``ids`` (ascending), ``snapshot`` taken just
        after it."""
        if self.max_wait_s <= 0 or snapshot is None:
            return
        blocker = max(snapshot.xip, default=-1)
        previous = after
        for event_id in ids:
            if event_id > previous + 1:
                self._gaps.append(Gap(previous + 1, event_id - 1, blocker, now))
            previous = max(previous, event_id)
        while len(self._gaps) > self.max_ranges:  # merge the lowest two (reads cover more)
            a, b = self._gaps[0], self._gaps[1]
            self._gaps[:2] = [
                Gap(a.lo, b.hi, max(a.blocker, b.blocker), max(a.seen_at, b.seen_at))
            ]

    def settled(self, snapshot: Snapshot | None, now: float) -> list[tuple[int, int]]:
        """Gaps no transaction can fill any more (or open longer than ``max_wait_s``, given
        up): to be read once more, then forgotten."""
        if snapshot is None or not self._gaps:
            return []
        keep: list[Gap] = []
        done: list[tuple[int, int]] = []
        for g in self._gaps:
            if g.blocker < snapshot.xmin or now - g.seen_at >= self.max_wait_s:
                done.append((g.lo, g.hi))
            else:
                keep.append(g)
        self._gaps = keep
        return done

    def cursor(self, head: int) -> int:
        """Every id up to this one is settled (seen, or never to appear)."""
        return min((g.lo - 1 for g in self._gaps), default=head)

    def __len__(self) -> int:
        return len(self._gaps)

    def clear(self) -> None:
        self._gaps.clear()
