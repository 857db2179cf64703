"""Inputs the transcriber must refuse or read frugally: named pipes, over-long files, big
files of a foreign format (read through ffmpeg in a stream, never whole)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.errors import AudioError
from voice.asr_batch import NOT_A_FILE, Batch, FileResult
from voice.audio import load_audio
from voice.transcribe import TranscriberPool
from voice.transcripts import TranscriptStore


def _tone(path: Path, seconds: float, rate: int, channels: int) -> Path:
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
            "-ac", str(channels), str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


async def test_a_named_pipe_is_refused_and_the_batch_goes_on(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    fifo = tmp_path / "stuck.wav"
    os.mkfifo(fifo)

    async def no_pool() -> TranscriberPool:
        raise AssertionError("nothing here needs decoding")

    results: list[FileResult] = []
    batch = Batch(TranscriptStore(engine), no_pool, model_name="m")
    try:
        summary = await asyncio.wait_for(batch.run([fifo], results.append), timeout=30)
    finally:
        with contextlib.suppress(OSError):  # if a reader hangs in open(), a writer frees it
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert (summary.done, summary.failed) == (0, 1)
    assert results[0].error == NOT_A_FILE


def test_load_audio_refuses_a_named_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "voice.ogg"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio(fifo)


@pytest.mark.parametrize(("name", "rate"), [("call.wav", 8000), ("voice.ogg", 44100)])
def test_audio_over_the_duration_limit_is_refused_with_its_length(
    tmp_path: Path, name: str, rate: int
) -> None:
    path = _tone(tmp_path / name, 5, rate, 2)
    with pytest.raises(AudioError) as caught:
        load_audio(path, max_duration_s=2)
    assert str(caught.value) == (
        "audio is 5 s long, over the limit of 2 s (POVTOR_ASR_MAX_AUDIO_S): "
        "split it or raise the limit"
    )
    assert load_audio(path, max_duration_s=10).duration_s == pytest.approx(5, abs=0.05)


def test_a_long_44khz_stereo_file_is_read_without_holding_it_whole(tmp_path: Path) -> None:
    """Ten minutes of 44.1 kHz stereo is 106 MB of samples; the decoder needs 19 MB of it."""
    path = _tone(tmp_path / "long.wav", 600, 44100, 2)
    probe = (
        "import resource, sys; from pathlib import Path; from voice.audio import load_audio; "
        "a = load_audio(Path(sys.argv[1])); "
        "print(a.duration_s, len(a.channels), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    duration, channels, peak_kib = float(out[0]), int(out[1]), int(out[2])
    assert duration == pytest.approx(600, abs=0.1)
    assert channels == 2
    baseline = subprocess.run(
        [sys.executable, "-c", "import resource, numpy, voice.audio; "
         "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    grown_mb = (peak_kib - int(baseline)) / 1024
    assert grown_mb < 80, f"loading took {grown_mb:.0f} MB over the interpreter's own"
