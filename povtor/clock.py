"""The worker's clock, handed down by the composition root.

Time stamps, leases and waits always run on real time (``now``). Contact hours ("not before 9
in the client's own zone") are judged on the time of day the clock *shows*: the real one in
production, and in the demo a clock that starts at a chosen moment and runs faster, so a
client in Vladivostok is held until the demo's morning, which comes within the demo's minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The real moment (UTC): what time stamps, leases and due times are written in."""
        ...

    def shown(self, at: datetime) -> datetime:
        """The moment the clock shows at the real moment ``at``: contact hours judge this."""
        ...

    def real(self, shown: datetime) -> datetime:
        """The real moment at which the clock shows ``shown`` (the inverse of ``shown``)."""
        ...


@dataclass(frozen=True, slots=True)
class SystemClock:
    """The real clock: it shows the real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def shown(self, at: datetime) -> datetime:
        return at

    def real(self, shown: datetime) -> datetime:
        return shown


@dataclass(frozen=True, slots=True)
class FastClock:
    """Shows ``start`` at the real moment ``origin`` and then runs ``speed`` times faster.

    Integer speeds keep the mapping exact to the microsecond both ways (a moment the clock
    shows maps back to the very real moment it came from)."""

    origin: datetime
    start: datetime
    speed: int

    def __post_init__(self) -> None:
        if self.speed < 1:
            raise ValueError("a clock's speed is a whole number >= 1")
        if self.origin.tzinfo is None or self.start.tzinfo is None:
            raise ValueError("a clock's origin and start need a time zone")

    def now(self) -> datetime:
        return datetime.now(UTC)

    def shown(self, at: datetime) -> datetime:
        return (self.start + (at - self.origin) * self.speed).astimezone(UTC)

    def real(self, shown: datetime) -> datetime:
        return (self.origin + (shown - self.start) / self.speed).astimezone(UTC)


SYSTEM_CLOCK = SystemClock()
