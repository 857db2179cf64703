"""Ids a scan of the timeline skipped that may still appear (pure).

PostgreSQL hands out ids when a row is inserted, and the transaction may commit after a later
id is already visible; an INSERT ... ON CONFLICT DO NOTHING or a rollback also burns ids that
never appear. So an id gap below the newest id seen stays open for a while and is looked at
again, then given up. (SQLite writes one transaction at a time: ids become visible in order,
and there is nothing to wait for.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Gap:
    lo: int
    hi: int
    seen_at: float


class Gaps:
    def __init__(self, wait_s: float, *, max_ranges: int = 100) -> None:
        self.wait_s = wait_s
        self.max_ranges = max_ranges
        self._gaps: list[Gap] = []

    def note(self, after: int, ids: Sequence[int], now: float) -> None:
        """A scan of ids above ``after`` returned ``ids`` (ascending)."""
        if self.wait_s <= 0:
            return
        previous = after
        for event_id in ids:
            if event_id > previous + 1:
                self._gaps.append(Gap(previous + 1, event_id - 1, now))
            previous = max(previous, event_id)
        while len(self._gaps) > self.max_ranges:  # merge the lowest two (rescans cover more)
            a, b = self._gaps[0], self._gaps[1]
            self._gaps[:2] = [Gap(a.lo, b.hi, max(a.seen_at, b.seen_at))]

    def open(self, now: float) -> list[tuple[int, int]]:
        """Gaps still worth a look; older ones are given up."""
        self._gaps = [g for g in self._gaps if now - g.seen_at < self.wait_s]
        return [(g.lo, g.hi) for g in self._gaps]

    def cursor(self, head: int) -> int:
        """Every id up to this one is settled (seen, or given up)."""
        return min((g.lo - 1 for g in self._gaps), default=head)

    def clear(self) -> None:
        self._gaps.clear()
