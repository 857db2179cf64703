"""Keeps the calls table in step with the call engine: a row at dial, outcome and recording at
the end.

    journal = CallJournal(store, storage, worker_id, incoming=incoming_folder(settings))
    engine = CallEngine(trunks, recorder_factory=journal.recorder, on_finished=journal.finished)
    await journal.started(uuid, trunk=name, target=uri, client_id=..., attempt_id=...)
    call = await engine.start_call(uri, trunk=name, call_uuid=uuid)
"""

from __future__ import annotations

import logging
from pathlib import Path

from povtor.errors import PovtorError
from voice.call import CallResult
from voice.call_records import CallRecord, HangupBy
from voice.call_store import CallStore
from voice.recording import CallRecorder, RecordingInfo, RecordingWriter
from voice.recording_archive import archive_recording
from voice.storage import RecordingStorage

log = logging.getLogger(__name__)


class CallJournal:
    def __init__(
        self,
        store: CallStore,
        storage: RecordingStorage,
        worker_id: str,
        *,
        incoming: Path,
        writer: RecordingWriter | None = None,
        flush_interval_s: float = 1.0,
    ) -> None:
        self.store = store
        self.storage = storage
        self.worker_id = worker_id
        self.incoming = incoming
        self._writer = writer
        self._flush_interval_s = flush_interval_s

    def recorder(self, call_uuid: str) -> CallRecorder:
        """The engine's ``recorder_factory``: a stereo recorder in the incoming folder."""
        return CallRecorder.open(
            self.incoming, call_uuid, writer=self._writer, flush_interval_s=self._flush_interval_s
        )

    async def started(
        self,
        call_uuid: str,
        *,
        trunk: str,
        target: str,
        client_id: int | None = None,
        attempt_id: int | None = None,
    ) -> CallRecord:
        return await self.store.create_call(
            call_uuid,
            trunk=trunk,
            target=target,
            worker_id=self.worker_id,
            client_id=client_id,
            attempt_id=attempt_id,
        )

    async def finished(self, result: CallResult) -> CallRecord:
        """The engine's ``on_finished``: outcome on the call, recording archived and linked.

        A recording that cannot be archived stays in the incoming folder, where the recovery
        at the next start picks it up; the call itself is still finished.
        """
        if result.answered_at is not None:
            await self.store.mark_answered(result.call_uuid, at=result.answered_at)
        call = await self.store.finish_call(
            result.call_uuid,
            outcome=result.outcome,
            sip_code=result.sip_code,
            sip_reason=result.reason or None,
            hangup_by=HangupBy(result.hung_up_by) if result.hung_up_by else HangupBy.NONE,
            dtmf=result.dtmf,
            ended_at=result.ended_at,
        )
        if isinstance(result.recording, RecordingInfo):
            try:
                await archive_recording(self.store, self.storage, result.recording, call)
            except PovtorError as err:
                log.error("recording of call %s not archived yet: %s", call.uuid, err)
        return call
