"""`povtor transcribe --json` as a process: the output contract, a kill mid-batch, a rerun."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from povtor.db import create_engine
from tests.integration.voice_asr.speech import CLIENT_LINES, say, write_wav
from voice.transcripts import TranscriptStore

pytestmark = pytest.mark.asr

KEYS = ["file", "duration_s", "text", "segments"]
SEGMENT_KEYS = ["start", "end", "speaker", "text"]


async def run_cli(
    args: list[str], env: dict[str, str], *, kill_after_lines: int | None = None
) -> tuple[list[str], str, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "transcribe", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group: the pool processes die with it
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(120):
            while line := await proc.stdout.readline():
                lines.append(line.decode())
                if kill_after_lines is not None and len(lines) >= kill_after_lines:
                    os.killpg(proc.pid, signal.SIGKILL)  # a crash: no cleanup at all
                    break
            err = await proc.stderr.read()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    return lines, err.decode(), code


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, line in enumerate(CLIENT_LINES[:4]):
        write_wav(folder / f"answer-{i}.wav", [say(line)])
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (folder / "live.wav.part").write_bytes(b"still recording")
    return folder


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    db = tmp_path / "povtor.db"
    db.write_bytes(sqlite_template.read_bytes())
    return f"sqlite+aiosqlite:///{db}"


async def test_json_lines_survive_a_kill_and_a_rerun_finishes_exactly_once(
    recordings: Path, tmp_path: Path, sqlite_url: str, ko_model: Path
) -> None:
    url = sqlite_url
    env = {
        **os.environ,
        "POVTOR_DATA_DIR": str(tmp_path / "data"),
        "POVTOR_DATABASE_URL": url,
        "POVTOR_ASR_WORKERS": "1",
    }
    args = [str(recordings), "--json", "--model", str(ko_model)]

    first, _, _ = await run_cli(args, env, kill_after_lines=1)
    engine = create_engine(url)
    try:
        store = TranscriptStore(engine)
        after_kill = await store.count()
        assert after_kill >= 1
        for line in first:
            row = json.loads(line)
            stored = await store.get_by_path(row["file"])
            assert stored is not None
            assert stored.status == ("failed" if "error" in row else "done")

        lines, err, code = await run_cli(args, env)
        assert code == 1  # one file failed
        rows = [json.loads(line) for line in lines]
        assert sorted(Path(r["file"]).name for r in rows) == [
            "answer-0.wav", "answer-1.wav", "answer-2.wav", "answer-3.wav", "broken.wav"
        ]  # fmt: skip
        for row in rows:
            if Path(row["file"]).name == "broken.wav":
                assert list(row) == [*KEYS, "error"]
                assert row["error"].startswith("not decodable audio")
                assert row["segments"] == []
                continue
            assert list(row) == KEYS
            assert row["duration_s"] > 0.5
            assert row["segments"]
            for segment in row["segments"]:
                assert list(segment) == SEGMENT_KEYS
                assert segment["speaker"] == "mono"
                assert 0 <= segment["start"] < segment["end"] <= row["duration_s"]
            assert row["text"] == " ".join(s["text"] for s in row["segments"])
        done_before = after_kill - (1 if "error" in json.loads(first[0]) else 0)
        assert f"{4 - done_before} transcribed, {done_before} already done, 1 failed" in err
        assert await store.count("done") == 4
        assert await store.count("failed") == 1
    finally:
        await engine.dispose()
