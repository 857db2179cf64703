"""The call store on real SQLite and PostgreSQL: idempotent writes, timeline events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from povtor.domain import EventKind, OutcomeKind
from povtor.errors import InvalidInput, NotFound
from tests.integration.schema import schema_drift
from voice.call_records import CallState, HangupBy, StorageKind, TranscriptionState
from voice.call_store import CallStore
from voice.recording import RecordingInfo

T0 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
TARGET = "sip:+79161234567@trunk.example"


def info(sha: str, uuid: str = "u1") -> RecordingInfo:
    return RecordingInfo(Path(f"/tmp/{uuid}.wav"), sha * 64, 12.5, 400044, uuid)


async def _new(calls: CallStore, uuid: str = "u1", **kw: object) -> None:
    defaults: dict[str, object] = {"trunk": "main", "target": TARGET, "worker_id": "w1"}
    await calls.create_call(uuid, **(defaults | kw))  # type: ignore[arg-type]


async def test_migration_creates_exactly_the_declared_tables(engine: AsyncEngine) -> None:
    assert await schema_drift(engine, "'calls'", "'recordings'") == []


async def test_new_call_is_active_and_keeps_the_target_out_of_its_repr(
    calls: CallStore, client_id: int
) -> None:
    call = await calls.create_call(
        "u1",
        trunk="main",
        target=TARGET,
        worker_id="w1",
        client_id=client_id,
        attempt_id=9,
        started_at=T0,
    )
    assert call.state is CallState.ACTIVE
    assert (call.client_id, call.attempt_id, call.started_at) == (client_id, 9, T0)
    assert call.target == TARGET
    assert "7916" not in repr(call)
    assert await calls.get_call("u1") == call


async def test_creating_the_same_call_twice_returns_the_first(calls: CallStore) -> None:
    first = await calls.create_call("u1", trunk="a", target=TARGET, worker_id="w1")
    again = await calls.create_call("u1", trunk="b", target=TARGET, worker_id="w2")
    assert again == first


async def test_call_for_an_unknown_client_is_refused(calls: CallStore) -> None:
    with pytest.raises(InvalidInput, match="unknown client"):
        await calls.create_call("u1", trunk="a", target=TARGET, worker_id="w", client_id=4242)


async def test_answer_time_is_set_once(calls: CallStore) -> None:
    await _new(calls)
    first = await calls.mark_answered("u1", at=T0)
    second = await calls.mark_answered("u1", at=T0 + timedelta(seconds=5))
    assert first.answered_at == second.answered_at == T0
    with pytest.raises(NotFound):
        await calls.mark_answered("nope")


async def test_finishing_twice_changes_nothing_and_adds_one_timeline_event(
    calls: CallStore, store: SqlHistoryStore, client_id: int
) -> None:
    await _new(calls, client_id=client_id, started_at=T0)
    await calls.mark_answered("u1", at=T0 + timedelta(seconds=4))
    done = await calls.finish_call(
        "u1",
        outcome=OutcomeKind.ANSWERED,
        sip_code=200,
        sip_reason="OK",
        hangup_by=HangupBy.CLIENT,
        dtmf="9",
        ended_at=T0 + timedelta(seconds=69),
        robot_text=[{"start": 0.0, "end": 2.5, "text": "Здравствуйте!"}],
    )
    again = await calls.finish_call("u1", outcome=OutcomeKind.FAILED, sip_code=500)

    assert again == done
    assert done.state is CallState.FINISHED
    assert (done.outcome, done.sip_code, done.hangup_by, done.dtmf) == (
        OutcomeKind.ANSWERED,
        200,
        HangupBy.CLIENT,
        "9",
    )
    assert done.talk_s == 65
    assert done.robot_text == ({"start": 0.0, "end": 2.5, "text": "Здравствуйте!"},)
    events = await store.timeline(client_id)
    assert [(e.kind, e.summary, e.ref) for e in events] == [
        (EventKind.CALL, "Звонок: разговор 1 мин 5 с, нажато: 9", f"call:{done.id}")
    ]
    assert events[0].at == T0 + timedelta(seconds=69)
    assert events[0].data["call_uuid"] == "u1"
    assert "7916" not in repr(events[0].data)


async def test_call_without_a_client_finishes_without_timeline(calls: CallStore) -> None:
    await _new(calls)
    call = await calls.finish_call("u1", outcome=OutcomeKind.BUSY, sip_code=486)
    assert (call.state, call.outcome, call.hangup_by) == (
        CallState.FINISHED,
        OutcomeKind.BUSY,
        None,
    )


async def test_dead_workers_active_calls_become_interrupted(
    calls: CallStore, store: SqlHistoryStore, client_id: int
) -> None:
    await _new(calls, "dead-1", worker_id="w1", client_id=client_id)
    await _new(calls, "dead-2", worker_id="w1")
    await _new(calls, "done-1", worker_id="w1")
    await calls.finish_call("done-1", outcome=OutcomeKind.NO_ANSWER)
    await _new(calls, "alive", worker_id="w2")

    hit = await calls.mark_interrupted(worker_id="w1", now=T0)

    assert [c.uuid for c in hit] == ["dead-1", "dead-2"]
    assert all(c.state is CallState.INTERRUPTED for c in hit)
    assert all((c.outcome, c.ended_at) == (OutcomeKind.INTERRUPTED, T0) for c in hit)
    assert (await calls.get_call("done-1")).outcome is OutcomeKind.NO_ANSWER
    assert (await calls.get_call("alive")).state is CallState.ACTIVE
    assert await calls.mark_interrupted(worker_id="w1") == []
    [event] = await store.timeline(client_id)
    assert event.summary == "Звонок: звонок прерван сбоем робота"
    finished = await calls.finish_call("dead-1", outcome=OutcomeKind.ANSWERED)
    assert finished.state is CallState.INTERRUPTED  # a late finish from a zombie is ignored


async def test_calls_started_before_a_time_become_interrupted(calls: CallStore) -> None:
    await _new(calls, "old", worker_id="w1", started_at=T0)
    await _new(calls, "new", worker_id="w2", started_at=T0 + timedelta(hours=2))
    hit = await calls.mark_interrupted(started_before=T0 + timedelta(hours=1))
    assert [c.uuid for c in hit] == ["old"]
    with pytest.raises(ValueError, match="worker_id"):
        await calls.mark_interrupted()


async def test_the_same_recording_is_attached_once(calls: CallStore) -> None:
    await _new(calls)
    first = await calls.attach_recording("u1", info("a"), "file:///r/u1.wav", StorageKind.LOCAL)
    again = await calls.attach_recording("u1", info("a"), "file:///x.wav", StorageKind.S3)
    assert again == first
    assert first.transcription_state is TranscriptionState.PENDING
    assert (first.duration_s, first.size_bytes, first.storage) == (12.5, 400044, StorageKind.LOCAL)
    assert await calls.recordings_of("u1") == [first]
    with pytest.raises(NotFound):
        await calls.attach_recording("nope", info("b"), "file:///b.wav", StorageKind.LOCAL)


async def test_transcription_queue_skips_done_and_deleted_recordings(calls: CallStore) -> None:
    await _new(calls)
    a = await calls.attach_recording("u1", info("a"), "file:///a.wav", StorageKind.LOCAL)
    b = await calls.attach_recording("u1", info("b"), "file:///b.wav", StorageKind.LOCAL)
    c = await calls.attach_recording("u1", info("c"), "file:///c.wav", StorageKind.LOCAL)
    await calls.set_transcription_state(a.id, TranscriptionState.DONE)
    await calls.mark_recording_deleted(b.id)
    assert [r.id for r in await calls.pending_transcription()] == [c.id]
    with pytest.raises(NotFound):
        await calls.set_transcription_state(99999, TranscriptionState.FAILED)


async def test_retention_lists_only_old_undeleted_recordings(calls: CallStore) -> None:
    await _new(calls)
    a = await calls.attach_recording("u1", info("a"), "file:///a.wav", StorageKind.LOCAL)
    b = await calls.attach_recording("u1", info("b"), "file:///b.wav", StorageKind.LOCAL)
    now = a.created_at + timedelta(days=30, seconds=1)
    assert [r.id for r in await calls.list_recordings_due_for_retention(now, 31)] == []
    assert [r.id for r in await calls.list_recordings_due_for_retention(now, 30)] == [a.id, b.id]
    await calls.mark_recording_deleted(a.id, at=T0)
    await calls.mark_recording_deleted(a.id, at=T0 + timedelta(days=1))
    assert [r.id for r in await calls.list_recordings_due_for_retention(now, 30)] == [b.id]
    [deleted, _] = await calls.recordings_of("u1")
    assert deleted.deleted_at == T0
