"""Deleting recordings older than the retention period: from storage first, then marked deleted.

Safe to run again and beside another sweeper: deleting a missing object is not an error and
marking a row deleted twice keeps the first time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from povtor.db import utcnow
from povtor.errors import PovtorError
from povtor.lifecycle import Periodic
from voice.call_records import StorageKind
from voice.call_store import CallStore
from voice.storage import RecordingStorage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepReport:
    deleted: int = 0
    failed: int = 0  # storage refused; tried again next sweep
    skipped: int = 0  # in a storage this worker is not configured for


async def sweep_recordings(
    store: CallStore,
    storages: Mapping[StorageKind, RecordingStorage],
    retention_days: int,
    *,
    now: datetime | None = None,
    batch_size: int = 500,
) -> SweepReport:
    """One sweep over every recording past retention; ``retention_days <= 0`` keeps everything."""
    if retention_days <= 0:
        return SweepReport()
    now = now or utcnow()
    deleted = failed = skipped = 0
    seen: set[int] = set()
    while True:
        due = await store.list_recordings_due_for_retention(
            now, retention_days, limit=batch_size + len(seen)
        )
        fresh = [r for r in due if r.id not in seen]
        if not fresh:
            break
        for recording in fresh:
            seen.add(recording.id)
            storage = storages.get(recording.storage)
            if storage is None:
                skipped += 1
                continue
            try:
                await storage.delete(recording.uri)
            except PovtorError as err:
                failed += 1
                log.error("retention: recording %s not deleted: %s", recording.id, err)
                continue
            await store.mark_recording_deleted(recording.id, at=now)
            deleted += 1
    if deleted or failed or skipped:
        log.info("retention: %d deleted, %d failed, %d skipped", deleted, failed, skipped)
    return SweepReport(deleted, failed, skipped)


class RetentionSweeper(Periodic):
    """Sweeps every ``interval_s`` until ``stop`` is set (a worker service); a database hiccup
    does not end it, the next period retries."""

    def __init__(
        self,
        store: CallStore,
        storages: Mapping[StorageKind, RecordingStorage],
        retention_days: int,
        interval_s: float = 3600.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        async def sweep() -> SweepReport:
            return await sweep_recordings(store, storages, retention_days, now=clock())

        super().__init__("recording-retention", sweep, interval_s)

    @property
    def sweeps(self) -> int:
        return self.rounds
