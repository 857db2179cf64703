"""The forkserver of the transcription pools: started ahead of the pool (``start_loading``), it
loads the model in a thread while it imports the pool's code, sets up one recogniser, and every
pool process forked from it starts with both.

The forkserver is one per process and reads what to load when it starts, so each case runs in
a fresh Python process of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.voice_asr.conftest import CallFile

pytestmark = pytest.mark.asr

ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import asyncio, dataclasses, json, sys
from multiprocessing import forkserver
from pathlib import Path
from tests.integration.voice_asr.test_forkserver import pool_process_state
from voice.transcribe import TranscriberPool, start_loading

async def main(model, call):
    start_loading(Path(model))
    server = forkserver._forkserver._forkserver_pid
    pool = TranscriberPool(Path(model), workers=1)
    try:
        before = pool._executor.submit(pool_process_state, model).result()
        transcript = await pool.transcribe(Path(call))
    finally:
        await pool.aclose()
    segments = [dataclasses.asdict(s) for s in transcript.segments]
    print(json.dumps({"server": server, "pool": before, "segments": segments}))

if __name__ == "__main__":  # run as a script too: the forkserver imports it
    asyncio.run(main(*sys.argv[1:]))
"""

ALONE = """
import dataclasses, json, sys
from pathlib import Path
from vosk import Model, SetLogLevel
from voice.audio import RATE, load_audio
from voice.decode import DecodeOptions, decode_audio, warm_recogniser

SetLogLevel(-1)
model = Model(sys.argv[1])
recogniser = warm_recogniser(model, RATE)
audio = load_audio(Path(sys.argv[2]))
transcript = decode_audio(model, audio, sys.argv[2], DecodeOptions(), recogniser)
print(json.dumps({"segments": [dataclasses.asdict(s) for s in transcript.segments]}))
"""

NOT_A_MODEL = """
import asyncio, sys
from pathlib import Path
from povtor.errors import ModelError
from voice.asr_batch import start_pool
from voice.transcribe import start_loading

async def main(folder):
    start_loading(Path(folder))
    try:
        await start_pool(Path(folder), workers=1)
    except ModelError as err:
        print(err)

asyncio.run(main(sys.argv[1]))
"""


def pool_process_state(model: str) -> dict[str, Any]:
    """Run in a pool process before its first file: what it was forked with."""
    from voice import transcribe

    recogniser = transcribe._recogniser
    return {
        "parent": os.getppid(),
        "model_preloaded": transcribe._model is transcribe.preloaded.get(model) is not None,
        "recogniser_fed": recogniser.fed if recogniser is not None else None,
        "recogniser_rate": recogniser.rate if recogniser is not None else None,
        "threads": len(os.listdir("/proc/self/task")),
    }


def _run(script: str, *args: str, cwd: Path = ROOT) -> str:
    """``script``: the code to run, or (with ``cwd``) a script file run from that folder."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args] if cwd == ROOT else [sys.executable, script, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout.splitlines()[-1]


def _words(found: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["speaker"], w["word"]) for s in found["segments"] for w in s["words"]]


def test_pool_processes_start_with_the_forkservers_model_and_a_recogniser_set_up(
    ko_model: Path, call_file: CallFile
) -> None:
    found = json.loads(_run(CHILD, str(ko_model), str(call_file.path)))

    state = found["pool"]
    assert state["parent"] == found["server"], "forked from the forkserver start_loading started"
    assert state["model_preloaded"] is True
    assert state["recogniser_rate"] == 8000
    assert state["recogniser_fed"] == 4000  # half a second of noise, nothing heard in it
    assert state["threads"] == 1  # the thread that loaded the model is not in the fork
    assert {s["speaker"] for s in found["segments"]} == {"robot", "client"}
    for segment in found["segments"]:  # times on the file's own timeline, not the recogniser's
        assert 0.0 <= segment["start"] <= segment["end"] <= call_file.phrases[-1].end + 0.5
    # the same words as a recogniser set up the same way in one process
    alone = json.loads(_run(ALONE, str(ko_model), str(call_file.path)))
    assert _words(found) == _words(alone)


def test_a_folder_that_is_no_model_is_reported_by_the_pool(tmp_path: Path) -> None:
    folder = tmp_path / "empty-model"
    folder.mkdir()

    message = _run(NOT_A_MODEL, str(folder))

    assert message.startswith("cannot start transcription processes"), message


def test_the_forkserver_imports_from_the_commands_path_not_its_working_folder(
    ko_model: Path, call_file: CallFile, tmp_path: Path
) -> None:
    # a script, as the installed ``povtor`` is (its own folder on the path, not the working
    # one), run from a folder that holds a package named as ours
    script = tmp_path / "bin" / "transcribe.py"
    script.parent.mkdir()
    script.write_text(CHILD)
    work = tmp_path / "work"
    (work / "voice").mkdir(parents=True)
    (work / "voice" / "__init__.py").write_text('raise ImportError("not this voice")\n')

    found = json.loads(_run(str(script), str(ko_model), str(call_file.path), cwd=work))

    assert found["pool"]["model_preloaded"] is True
    assert {s["speaker"] for s in found["segments"]} == {"robot", "client"}
