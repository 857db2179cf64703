"""What a CRM sync is told (:class:`SyncOptions`) and what a round of it did
(:class:`RoundReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_sync.outbound.selection import DEFAULT_KINDS, SyncKind


@dataclass(frozen=True, slots=True)
class SyncOptions:
    kinds: frozenset[SyncKind] = DEFAULT_KINDS
    batch_size: int = 100  # pushes claimed per round
    scan_size: int = 1000  # events read per round
    poll_interval_s: float = 5.0
    max_attempts: int = 10
    retry_backoff_s: float = 10.0
    retry_max_s: float = 3600.0
    lease_s: float = 120.0
    gap_wait_s: float = 600.0  # PostgreSQL: at most this long for an id gap; 0 on SQLite
    backfill: bool = False
    external_id_is_crm_id: bool = False
    timezone: str = "Europe/Moscow"


@dataclass
class RoundReport:
    held: bool = True  # this worker holds the connector's lease
    scanned: int = 0
    queued: int = 0
    pushed: int = 0
    retried: int = 0
    failed: int = 0
    paused_s: float = 0.0  # the CRM asked to wait (rate limit) or is down
    errors: list[str] = field(default_factory=list)

    def add(self, other: RoundReport) -> None:
        self.held = self.held and other.held
        self.scanned += other.scanned
        self.queued += other.queued
        self.pushed += other.pushed
        self.retried += other.retried
        self.failed += other.failed
        self.errors += other.errors
