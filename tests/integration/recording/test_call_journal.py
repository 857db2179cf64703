"""The journal between the call engine and the store: outcome, recording and timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from crm_sync.history.store import SqlHistoryStore
from povtor.domain import OutcomeKind
from tests.unit.recording.frames import client_frame, robot_frame
from voice.call import CallResult
from voice.call_journal import CallJournal
from voice.call_records import CallState, HangupBy
from voice.call_store import CallStore
from voice.recording import RecordingInfo, RecordingWriter
from voice.storage import LocalStorage

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _result(uuid: str, recording: RecordingInfo | None) -> CallResult:
    return CallResult(
        call_uuid=uuid,
        trunk="main",
        outcome=OutcomeKind.ANSWERED,
        sip_code=200,
        reason="Normal clearing",
        started_at=T0,
        answered_at=T0 + timedelta(seconds=3),
        ended_at=T0 + timedelta(seconds=33),
        ring_s=1.0,
        setup_s=3.0,
        duration_s=30.0,
        hung_up_by="client",
        dtmf="5",
        recording=recording,
    )


async def _recorded_call(journal: CallJournal, uuid: str, client_id: int | None) -> RecordingInfo:
    await journal.started(uuid, trunk="main", target="sip:+79161234567@x", client_id=client_id)
    recorder = journal.recorder(uuid)
    for n in range(25):
        recorder.write_tick(robot_frame(n), client_frame(n))
    return await recorder.finish()


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_finished_call_gets_outcome_recording_and_timeline_event(
    calls: CallStore,
    store: SqlHistoryStore,
    client_id: int,
    recordings_root: Path,
    writer: RecordingWriter,
) -> None:
    incoming = recordings_root / "incoming"
    journal = CallJournal(
        calls, LocalStorage(recordings_root), "w1", incoming=incoming, writer=writer
    )
    info = await _recorded_call(journal, "j-1", client_id)

    call = await journal.finished(_result("j-1", info))

    assert (call.state, call.outcome, call.hangup_by, call.dtmf) == (
        CallState.FINISHED,
        OutcomeKind.ANSWERED,
        HangupBy.CLIENT,
        "5",
    )
    assert (call.answered_at, call.ended_at, call.talk_s) == (
        T0 + timedelta(seconds=3),
        T0 + timedelta(seconds=33),
        30.0,
    )
    [record] = await calls.recordings_of("j-1")
    assert record.sha256 == info.sha256
    assert _names(incoming) == []
    [event] = await store.timeline(client_id)
    assert event.summary == "Звонок: разговор 30 с, нажато: 5"
    assert await journal.finished(_result("j-1", info)) == call  # a repeat changes nothing


async def test_unarchivable_recording_stays_for_recovery_and_the_call_still_finishes(
    calls: CallStore, tmp_path: Path, writer: RecordingWriter
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    incoming = tmp_path / "incoming"
    journal = CallJournal(
        calls, LocalStorage(not_a_folder), "w1", incoming=incoming, writer=writer
    )
    info = await _recorded_call(journal, "j-2", None)

    call = await journal.finished(_result("j-2", info))

    assert call.state is CallState.FINISHED
    assert await calls.recordings_of("j-2") == []
    assert _names(incoming) == ["j-2.wav"]
