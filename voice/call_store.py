"""The store of calls and recordings: every write idempotent, every read a frozen record.

Writes are Core statements, not ORM flushes: ``calls.client_id`` references ``clients``, a
table of crm_sync this package never imports, and an ORM flush would need it in the metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from povtor.db import utcnow
from povtor.domain import OutcomeKind
from povtor.errors import InvalidInput, NotFound, StoreError
from povtor.ports import Timeline
from voice.call_records import (
    CallRecord,
    CallState,
    HangupBy,
    RecordingRecord,
    StorageKind,
    TranscriptionState,
)
from voice.call_timeline import record_call_finished
from voice.recording import RecordingInfo
from voice.tables import CallRow, RecordingRow

log = logging.getLogger(__name__)


def _call(row: CallRow) -> CallRecord:
    return CallRecord(
        id=row.id,
        uuid=row.uuid,
        client_id=row.client_id,
        attempt_id=row.attempt_id,
        trunk=row.trunk,
        direction=row.direction,
        target=row.target,
        state=CallState(row.state),
        worker_id=row.worker_id,
        started_at=row.started_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        outcome=OutcomeKind(row.outcome) if row.outcome else None,
        sip_code=row.sip_code,
        sip_reason=row.sip_reason,
        hangup_by=HangupBy(row.hangup_by) if row.hangup_by else None,
        dtmf=row.dtmf,
        robot_text=tuple(row.robot_text or ()),
    )


def _recording(row: RecordingRow) -> RecordingRecord:
    return RecordingRecord(
        id=row.id,
        call_id=row.call_id,
        uri=row.uri,
        sha256=row.sha256,
        duration_s=row.duration_s,
        size_bytes=row.size_bytes,
        storage=StorageKind(row.storage),
        created_at=row.created_at,
        deleted_at=row.deleted_at,
        transcription_state=TranscriptionState(row.transcription_state),
    )


class CallStore:
    """Calls and recordings in the shared database.

    With a ``history`` store, every finished or interrupted call of a known client also lands
    in the client's timeline as a CALL event (once per call: dedup key ``call:<uuid>``).
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], history: Timeline | None = None
    ) -> None:
        self._sessions = sessions
        self._history = history

    async def create_call(
        self,
        uuid: str,
        *,
        trunk: str,
        target: str,
        worker_id: str,
        client_id: int | None = None,
        attempt_id: int | None = None,
        direction: str = "out",
        started_at: datetime | None = None,
    ) -> CallRecord:
        """A new active call; creating the same uuid again returns the existing call."""
        values = {
            "uuid": uuid,
            "client_id": client_id,
            "attempt_id": attempt_id,
            "trunk": trunk,
            "direction": direction,
            "target": target,
            "state": CallState.ACTIVE.value,
            "worker_id": worker_id,
            "started_at": started_at or utcnow(),
            "dtmf": "",
        }
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(insert(CallRow).values(**values))
                return _call(await self._call_row(session, uuid))
        except IntegrityError as err:
            try:
                return await self.get_call(uuid)
            except NotFound:
                raise InvalidInput(f"call {uuid}: unknown client {client_id}") from err

    async def get_call(self, uuid: str) -> CallRecord:
        async with self._sessions() as session:
            return _call(await self._call_row(session, uuid))

    async def mark_answered(self, uuid: str, at: datetime | None = None) -> CallRecord:
        """Sets the answer time once; later calls change nothing."""
        return await self._update_active(
            uuid, {"answered_at": at or utcnow()}, CallRow.answered_at.is_(None)
        )

    async def finish_call(
        self,
        uuid: str,
        *,
        outcome: OutcomeKind,
        sip_code: int | None = None,
        sip_reason: str | None = None,
        hangup_by: HangupBy | None = None,
        dtmf: str = "",
        ended_at: datetime | None = None,
        robot_text: Sequence[Mapping[str, Any]] | None = None,
    ) -> CallRecord:
        """Closes an active call; finishing it twice (or after interruption) changes nothing."""
        values: dict[str, Any] = {
            "state": CallState.FINISHED.value,
            "outcome": outcome.value,
            "sip_code": sip_code,
            "sip_reason": sip_reason[:255] if sip_reason else sip_reason,
            "hangup_by": hangup_by.value if hangup_by else None,
            "dtmf": dtmf[:128],
            "ended_at": ended_at or utcnow(),
        }
        if robot_text is not None:
            values["robot_text"] = [dict(p) for p in robot_text]
        call = await self._update_active(uuid, values)
        await self._to_timeline(call)
        return call

    async def mark_interrupted(
        self,
        *,
        worker_id: str | None = None,
        started_before: datetime | None = None,
        now: datetime | None = None,
    ) -> list[CallRecord]:
        """Active calls of a dead worker (or started before a time) become interrupted."""
        if worker_id is None and started_before is None:
            raise ValueError("give a worker_id or started_before")
        query = select(CallRow.id).where(CallRow.state == CallState.ACTIVE.value)
        if worker_id is not None:
            query = query.where(CallRow.worker_id == worker_id)
        if started_before is not None:
            query = query.where(CallRow.started_at < started_before)
        async with self._sessions() as session, session.begin():
            ids = list(await session.scalars(query.with_for_update()))
            if not ids:
                return []
            await session.execute(
                update(CallRow)
                .where(CallRow.id.in_(ids), CallRow.state == CallState.ACTIVE.value)
                .values(
                    state=CallState.INTERRUPTED.value,
                    outcome=OutcomeKind.INTERRUPTED.value,
                    hangup_by=HangupBy.NONE.value,
                    ended_at=now or utcnow(),
                )
            )
            rows = await session.scalars(
                select(CallRow).where(CallRow.id.in_(ids)).order_by(CallRow.id)
            )
            calls = [_call(row) for row in rows]
        for call in calls:
            log.warning("call %s of worker %s marked interrupted", call.uuid, call.worker_id)
            await self._to_timeline(call)
        return calls

    async def attach_recording(
        self, uuid: str, info: RecordingInfo, uri: str, storage: StorageKind
    ) -> RecordingRecord:
        """Links a stored recording to its call; the same file (sha256) is attached once."""
        existing = await self._recording_by_sha(info.sha256)
        if existing is not None:
            return existing
        try:
            async with self._sessions() as session, session.begin():
                call = await self._call_row(session, uuid)
                await session.execute(
                    insert(RecordingRow).values(
                        call_id=call.id,
                        uri=uri,
                        sha256=info.sha256,
                        duration_s=info.duration_s,
                        size_bytes=info.size_bytes,
                        storage=storage.value,
                        created_at=utcnow(),
                        transcription_state=TranscriptionState.PENDING.value,
                    )
                )
        except IntegrityError:
            pass  # attached meanwhile by another worker: the same sha256 is there now
        existing = await self._recording_by_sha(info.sha256)
        if existing is None:
            raise StoreError(f"recording of call {uuid} was not stored")
        return existing

    async def recordings_of(self, uuid: str) -> list[RecordingRecord]:
        async with self._sessions() as session:
            call = await self._call_row(session, uuid)
            rows = await session.scalars(
                select(RecordingRow)
                .where(RecordingRow.call_id == call.id)
                .order_by(RecordingRow.id)
            )
            return [_recording(r) for r in rows]

    async def list_recordings_due_for_retention(
        self, now: datetime, retention_days: int, limit: int = 500
    ) -> list[RecordingRecord]:
        """Recordings created more than ``retention_days`` before ``now`` and not yet deleted."""
        cutoff = now - timedelta(days=retention_days)
        query = (
            select(RecordingRow)
            .where(RecordingRow.deleted_at.is_(None), RecordingRow.created_at < cutoff)
            .order_by(RecordingRow.created_at, RecordingRow.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_recording(r) for r in await session.scalars(query)]

    async def mark_recording_deleted(self, recording_id: int, at: datetime | None = None) -> None:
        """Idempotent: the first deletion time is kept."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(RecordingRow)
                .where(RecordingRow.id == recording_id, RecordingRow.deleted_at.is_(None))
                .values(deleted_at=at or utcnow())
            )

    async def pending_transcription(self, limit: int = 100) -> list[RecordingRecord]:
        """Recordings waiting for the transcriber, oldest first (deleted ones excluded)."""
        query = (
            select(RecordingRow)
            .where(
                RecordingRow.transcription_state == TranscriptionState.PENDING.value,
                RecordingRow.deleted_at.is_(None),
            )
            .order_by(RecordingRow.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_recording(r) for r in await session.scalars(query)]

    async def set_transcription_state(self, recording_id: int, state: TranscriptionState) -> None:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(RecordingRow)
                .where(RecordingRow.id == recording_id)
                .values(transcription_state=state.value)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"recording {recording_id}")

    async def _update_active(
        self, uuid: str, values: dict[str, Any], *conditions: ColumnElement[bool]
    ) -> CallRecord:
        """Update the call only while it is active (and ``conditions`` hold); return it."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(CallRow)
                .where(CallRow.uuid == uuid, CallRow.state == CallState.ACTIVE.value, *conditions)
                .values(**values)
            )
            return _call(await self._call_row(session, uuid))

    async def _call_row(self, session: AsyncSession, uuid: str) -> CallRow:
        row = await session.scalar(select(CallRow).where(CallRow.uuid == uuid))
        if row is None:
            raise NotFound(f"call {uuid}")
        return row

    async def _recording_by_sha(self, sha256: str) -> RecordingRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(select(RecordingRow).where(RecordingRow.sha256 == sha256))
            return None if row is None else _recording(row)

    async def _to_timeline(self, call: CallRecord) -> None:
        if self._history is not None and call.state != CallState.ACTIVE:
            await record_call_finished(self._history, call)
