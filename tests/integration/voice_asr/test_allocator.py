"""The transcription pool's processes allocate with jemalloc where the system has it
(``POVTOR_ASR_ALLOCATOR``): they must hear what they hear on glibc's malloc, and what they run
must not inherit the preload.

Not bit for bit: the acoustic model's matrix products land on differently aligned memory, so
scores differ in the last digits (a confidence of 0.5380 against 0.5397) and now and then a
word the model was torn over comes out the other way (1 of 62 in one call of the benchmark).
Each allocator alone is deterministic.

The forkserver is one per process and starts with the first pool, so each allocator runs in a
fresh Python process of its own.
"""

from __future__ import annotations

import ctypes.util
import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.voice_asr.conftest import CallFile
from voice.transcribe import allocator_library

pytestmark = pytest.mark.asr

ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import asyncio, dataclasses, json, os, sys
from pathlib import Path
from tests.integration.voice_asr.test_allocator import pool_process_state
from voice.transcribe import TranscriberPool

async def main(model, call, allocator):
    pool = TranscriberPool(Path(model), workers=1, allocator=allocator)
    try:
        transcript = await pool.transcribe(Path(call))
        seen = pool._executor.submit(pool_process_state).result()
    finally:
        await pool.aclose()
    segments = [dataclasses.asdict(s) for s in transcript.segments]
    here = os.environ.get("LD_PRELOAD", "")
    print(json.dumps({"segments": segments, "pool": seen, "parent_ld_preload": here}))

asyncio.run(main(*sys.argv[1:]))
"""


def pool_process_state() -> dict[str, Any]:
    """Run in a pool process: is jemalloc mapped, and what would a program it runs inherit."""
    maps = Path("/proc/self/maps").read_text()
    return {
        "jemalloc": "libjemalloc" in maps,
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
        "threads": len(os.listdir("/proc/self/task")),
    }


def _words(found: dict[str, Any]) -> list[str]:
    return [w["word"] for s in found["segments"] for w in s["words"]]


def _timed(found: dict[str, Any]) -> list[tuple[str, float, float]]:
    return [(w["word"], w["start"], w["end"]) for s in found["segments"] for w in s["words"]]


def _speakers(found: dict[str, Any]) -> list[str]:
    return [s["speaker"] for s in found["segments"]]


def _transcribe(model: Path, call: Path, allocator: str, preload: str = "") -> dict[str, Any]:
    env = {**os.environ, "LD_PRELOAD": preload} if preload else dict(os.environ)
    if not preload:
        env.pop("LD_PRELOAD", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), str(call), allocator],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.skipif(allocator_library("jemalloc") is None, reason="libjemalloc is not installed")
def test_pool_processes_on_jemalloc_find_what_they_find_on_the_system_allocator(
    ko_model: Path, call_file: CallFile
) -> None:
    jemalloc = _transcribe(ko_model, call_file.path, "jemalloc")
    system = _transcribe(ko_model, call_file.path, "system")

    assert jemalloc["pool"]["jemalloc"] is True
    assert system["pool"]["jemalloc"] is False
    # one decoding thread per process: Vosk's OpenBLAS started none of its own
    assert jemalloc["pool"]["threads"] == system["pool"]["threads"] == 1
    assert jemalloc["segments"], "the call was heard"
    assert _speakers(jemalloc) == _speakers(system)
    heard, also = _timed(jemalloc), _timed(system)
    matcher = difflib.SequenceMatcher(
        a=[w for w, _, _ in heard], b=[w for w, _, _ in also], autojunk=False
    )
    assert matcher.ratio() >= 0.9, (heard, also)
    for block in matcher.get_matching_blocks():  # a word heard by both is heard at one time
        for i in range(block.size):
            a, b = heard[block.a + i], also[block.b + i]
            assert abs(a[1] - b[1]) <= 0.1, (a, b)
            assert abs(a[2] - b[2]) <= 0.1, (a, b)
    again = _transcribe(ko_model, call_file.path, "jemalloc")
    assert again["segments"] == jemalloc["segments"]  # deterministic on its own
    # neither the command's process nor what a pool process runs (ffmpeg) keeps the preload
    assert jemalloc["parent_ld_preload"] == ""
    assert jemalloc["pool"]["ld_preload"] == ""


@pytest.mark.skipif(allocator_library("jemalloc") is None, reason="libjemalloc is not installed")
def test_a_preload_of_the_users_own_is_kept_beside_the_allocator(
    ko_model: Path, call_file: CallFile
) -> None:
    own = ctypes.util.find_library("m") or "libm.so.6"  # harmless to preload anywhere
    found = _transcribe(ko_model, call_file.path, "jemalloc", preload=own)

    assert found["pool"]["jemalloc"] is True
    assert found["parent_ld_preload"] == own
    assert found["pool"]["ld_preload"] == own
