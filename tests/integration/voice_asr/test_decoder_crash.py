"""A decoder process that dies (a native crash, the OOM killer) is simulated the way it
happens: the process is SIGKILLed from outside while it holds the file. The pool starts
again, the file gets one more try alone, and only a file that kills that process too is
stored as failed; the rest of the batch goes on."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from povtor.errors import AudioError
from tests.integration.voice_asr.conftest import CallFile
from tests.integration.voice_asr.speech import CLIENT_LINES, say, write_wav
from voice.transcribe import TranscriberPool

pytestmark = pytest.mark.asr


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~16 s of speech: decoding takes seconds, far longer than the kill takes to land."""
    path = tmp_path_factory.mktemp("crash") / "long.wav"
    write_wav(path, [say(" ".join(CLIENT_LINES * 2))])
    return path


@pytest.fixture
async def pool(ko_model: Path) -> AsyncIterator[TranscriberPool]:
    """A pool of its own: its processes get killed."""
    pool = TranscriberPool(ko_model, workers=1)
    await pool.warm_up()
    yield pool
    await pool.aclose(cancel=True)


def _kill(pids: list[int]) -> None:
    assert pids, "no process to kill"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


async def _quarantine_started(pool: TranscriberPool, within: float = 30.0) -> list[int]:
    """The quarantine process, as soon as the file has been handed to it."""
    deadline = time.monotonic() + within
    while not (pids := pool.quarantine_pids()):
        assert time.monotonic() < deadline, "the file was never tried again alone"
        await asyncio.sleep(0.01)
    return pids


async def test_files_in_a_pool_whose_process_died_are_each_transcribed_on_a_second_try(
    pool: TranscriberPool, long_file: Path, call_file: CallFile, voice_message: Path
) -> None:
    tasks = [
        asyncio.ensure_future(pool.transcribe(path))
        for path in (long_file, call_file.path, voice_message)
    ]
    await asyncio.sleep(0)  # all three are in the pool
    _kill(pool.pids())

    transcripts = await asyncio.gather(*tasks)
    assert [t.file for t in transcripts] == [
        str(p) for p in (long_file, call_file.path, voice_message)
    ]
    assert all(t.segments for t in transcripts)
    assert transcripts[0].duration_s > 12
    assert pool.restarts == 1


async def test_a_file_that_kills_its_process_twice_fails_with_a_reason_and_the_pool_goes_on(
    pool: TranscriberPool, long_file: Path, call_file: CallFile
) -> None:
    task = asyncio.ensure_future(pool.transcribe(long_file))
    await asyncio.sleep(0)
    _kill(pool.pids())
    _kill(await _quarantine_started(pool))  # alone, and its process dies again

    with pytest.raises(AudioError, match="died on this file"):
        await task  # a Batch stores this as failed, with the reason, and goes on
    assert pool.quarantine_pids() == []
    again = await pool.transcribe(call_file.path)
    assert again.segments
