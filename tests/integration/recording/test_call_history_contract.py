"""The ``CallHistory`` contract, run against the real ``SqlCallHistory`` (SQLite and PostgreSQL)
and against the fake the dashboard's page tests use, so the pages are tested against what the
worker really serves: newest call first, talk time, the dialogue in time order, "pending" until
a recorded call is transcribed, and a recording whose file is gone served as missing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, SqlHistoryStore
from povtor.db import session_factory
from povtor.domain import OutcomeKind
from povtor.ports import CallHistory, DialogueLine, Segment, Transcript
from tests.fakes.dashboard_calls import FakeCallHistory, write_wav
from voice.call_history import SqlCallHistory
from voice.call_records import StorageKind
from voice.call_store import CallStore
from voice.recording import CallRecorder, RecordingWriter
from voice.recording_archive import archive_recording
from voice.storage import LocalStorage
from voice.transcripts import TranscriptStore

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
DIALOGUE = (
    DialogueLine(speaker="client", start=0.6, end=0.9, text="девять"),
    DialogueLine(speaker="robot", start=0.0, end=0.5, text="оцените нас"),
    DialogueLine(speaker="client", start=1.0, end=1.2, text=""),
)


class Calls(Protocol):
    """How a contract test puts calls where one implementation reads them."""

    history: CallHistory

    async def call(
        self,
        client_id: int,
        started_at: datetime,
        *,
        outcome: OutcomeKind = OutcomeKind.ANSWERED,
        talk_s: float | None = None,
        recorded: bool = False,
    ) -> int: ...

    async def transcribe(self, call_id: int, dialogue: Sequence[DialogueLine]) -> None: ...

    async def lose_recording_file(self, call_id: int) -> None: ...


@dataclass
class SqlCalls:
    engine: AsyncEngine
    root: Path
    writer: RecordingWriter
    store: CallStore
    history: SqlCallHistory
    _files: dict[int, tuple[Path, str]] = field(default_factory=dict)

    async def call(
        self,
        client_id: int,
        started_at: datetime,
        *,
        outcome: OutcomeKind = OutcomeKind.ANSWERED,
        talk_s: float | None = None,
        recorded: bool = False,
    ) -> int:
        uuid = f"contract-{len(self._files)}-{started_at.timestamp()}"
        call = await self.store.create_call(
            uuid,
            trunk="t",
            target="sip:+79161234567@pbx",
            worker_id="w",
            client_id=client_id,
            started_at=started_at,
        )
        answered = started_at + timedelta(seconds=3)
        if talk_s is not None:
            await self.store.mark_answered(uuid, at=answered)
        info = None
        if recorded:
            rec = CallRecorder.open(self.root / "incoming", uuid, writer=self.writer)
            for _ in range(50):
                rec.write_tick(b"\x01\x00" * 160, b"\x02\x00" * 160)
            info = await rec.finish()
        ended = answered + timedelta(seconds=talk_s) if talk_s is not None else None
        await self.store.finish_call(uuid, outcome=outcome, ended_at=ended)
        if info is not None:
            await archive_recording(self.store, LocalStorage(self.root), info, call)
            path = await self.history.recording_path(call.id)
            assert path is not None
            self._files[call.id] = (path, info.sha256)
        else:
            self._files[call.id] = (self.root / "none", "")
        return call.id

    async def transcribe(self, call_id: int, dialogue: Sequence[DialogueLine]) -> None:
        segments = tuple(
            Segment(start=d.start, end=d.end, speaker=d.speaker, text=d.text) for d in dialogue
        )
        transcript = Transcript(file=f"{call_id}.wav", duration_s=2.0, segments=segments)
        await TranscriptStore(self.engine).save_done(self._files[call_id][1], transcript)

    async def lose_recording_file(self, call_id: int) -> None:
        self._files[call_id][0].unlink()


@dataclass
class FakeCalls:
    root: Path
    history: FakeCallHistory = field(default_factory=FakeCallHistory)

    async def call(
        self,
        client_id: int,
        started_at: datetime,
        *,
        outcome: OutcomeKind = OutcomeKind.ANSWERED,
        talk_s: float | None = None,
        recorded: bool = False,
    ) -> int:
        call_id = len(self.history._calls) + 1
        recording = None
        if recorded:
            recording = self.root / f"call-{call_id}.wav"
            write_wav(recording)
        self.history.add(
            call_id, client_id, started_at, (), recording, outcome=outcome, talk_s=talk_s
        )
        return call_id

    async def transcribe(self, call_id: int, dialogue: Sequence[DialogueLine]) -> None:
        self.history.transcribe(call_id, dialogue)

    async def lose_recording_file(self, call_id: int) -> None:
        path = await self.history.recording_path(call_id)
        assert path is not None
        path.unlink()


@pytest.fixture(params=["sql", "fake"])
async def calls(
    request: pytest.FixtureRequest,
    engine: AsyncEngine,
    store: SqlHistoryStore,
    recordings_root: Path,
) -> AsyncIterator[Calls]:
    if request.param == "fake":
        yield FakeCalls(recordings_root)
        return
    storages = {StorageKind.LOCAL: LocalStorage(recordings_root)}
    history = SqlCallHistory(session_factory(engine), storages, recordings_root / "cache")
    with RecordingWriter(threads=1) as writer:
        call_store = CallStore(session_factory(engine), history=store)
        yield SqlCalls(engine, recordings_root, writer, call_store, history)


async def test_a_recorded_call_is_pending_then_shows_its_dialogue_in_time_order(
    calls: Calls, client_id: int
) -> None:
    call_id = await calls.call(client_id, T0, talk_s=42.0, recorded=True)

    view = await calls.history.get_call(call_id)
    assert view is not None
    assert (view.id, view.client_id, view.started_at) == (call_id, client_id, T0)
    assert (view.outcome, view.talk_s, view.has_recording) == (OutcomeKind.ANSWERED, 42.0, True)
    assert (view.transcript_state, view.dialogue) == ("pending", ())

    await calls.transcribe(call_id, DIALOGUE)
    view = await calls.history.get_call(call_id)
    assert view is not None
    assert view.transcript_state == "done"
    assert [(d.speaker, d.start, d.text) for d in view.dialogue] == [
        ("robot", 0.0, "оцените нас"),
        ("client", 0.6, "девять"),
    ]
    path = await calls.history.recording_path(call_id)
    assert path is not None
    assert path.read_bytes()[:4] == b"RIFF"


async def test_an_unanswered_call_has_no_talk_time_recording_or_transcript(
    calls: Calls, client_id: int
) -> None:
    call_id = await calls.call(client_id, T0, outcome=OutcomeKind.BUSY)
    view = await calls.history.get_call(call_id)
    assert view is not None
    assert (view.outcome, view.talk_s, view.has_recording) == (OutcomeKind.BUSY, None, False)
    assert (view.transcript_state, view.dialogue) == (None, ())
    assert await calls.history.recording_path(call_id) is None


async def test_an_unknown_call_is_none(calls: Calls, client_id: int) -> None:
    call_id = await calls.call(client_id, T0, outcome=OutcomeKind.NO_ANSWER)
    assert await calls.history.get_call(call_id + 1000) is None
    assert await calls.history.recording_path(call_id + 1000) is None


async def test_a_client_s_calls_come_newest_first_ties_by_higher_id_within_the_limit(
    calls: Calls, client_id: int, store: SqlHistoryStore
) -> None:
    other = await store.create_client(ClientInput(external_id="C-78", name="Олег"))
    first = await calls.call(client_id, T0, outcome=OutcomeKind.BUSY)
    newest = await calls.call(client_id, T0 + timedelta(days=2), outcome=OutcomeKind.BUSY)
    tie = await calls.call(client_id, T0, outcome=OutcomeKind.NO_ANSWER)
    await calls.call(other.id, T0 + timedelta(days=5), outcome=OutcomeKind.BUSY)

    listed = await calls.history.calls_for_client(client_id)
    assert [c.id for c in listed] == [newest, tie, first]
    assert [c.id for c in await calls.history.calls_for_client(client_id, limit=2)] == [
        newest,
        tie,
    ]
    assert await calls.history.calls_for_client(other.id + 1000) == []


async def test_a_recording_whose_file_is_gone_is_served_as_missing(
    calls: Calls, client_id: int
) -> None:
    call_id = await calls.call(client_id, T0, talk_s=10.0, recorded=True)
    await calls.lose_recording_file(call_id)
    assert await calls.history.recording_path(call_id) is None
