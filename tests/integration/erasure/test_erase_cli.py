"""`povtor client erase` as a real process: confirmation, the --json lines (no phone in any
output), a file of phones and codes, a pending request finished by the next run, and
`povtor client erasures`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.settings import Settings
from tests.integration.erasure.conftest import files_of, rows_of, seed_client
from tests.integration.imports.conftest import run_povtor

KEYS = ["entry", "id", "request", "state", "removed", "error"]
PARTS = ["outreach", "bot", "voice", "history"]


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


async def test_erase_by_phone_and_code_prints_one_json_line_per_client_and_no_phone(
    engine: AsyncEngine, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    erased = await seed_client(engine, settings, "C1", "+79161234567", 1001)
    kept = await seed_client(engine, settings, "C2", "+79167654321", 1002)
    before = await rows_of(engine, kept)

    refused = run_povtor(db_url, "client", "erase", "--phone", "8 916 123-45-67", cwd=tmp_path)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert (await rows_of(engine, erased))["clients"] == 1

    result = run_povtor(
        db_url,
        "client", "erase", "--phone", "8 916 123-45-67", "--client-id", "NOPE", "--json", "--yes",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    assert [list(line) for line in lines] == [KEYS, KEYS]
    missing, done = lines
    assert missing == {
        "entry": 2,
        "id": None,
        "request": None,
        "state": "not_found",
        "removed": {},
        "error": None,
    }
    assert (done["entry"], done["id"], done["state"], done["error"]) == (
        1,
        erased.client_id,
        "done",
        None,
    )
    assert list(done["removed"]) == PARTS
    assert all(isinstance(n, int) for part in done["removed"].values() for n in part.values())
    for text in (result.stdout, result.stderr):
        assert "9161234567" not in text
        assert "916 123" not in text
    assert set((await rows_of(engine, erased)).values()) == {0}
    assert files_of(erased) == [False, False, False]
    assert await rows_of(engine, kept) == before

    record = run_povtor(db_url, "client", "erasures", "--json", cwd=tmp_path)
    (entry,) = json_lines(record.stdout)
    assert entry["request"] == done["request"]
    assert entry["state"] == "done"
    assert entry["parts"] == sorted(PARTS)
    assert entry["requested_by"].startswith("cli:")


async def test_a_file_of_phones_and_codes_and_a_rerun_that_finishes_a_pending_request(
    engine: AsyncEngine, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    first = await seed_client(engine, settings, "C1", "+79161234567", 1001)
    second = await seed_client(engine, settings, "C2", "+79167654321", 1002)
    second.recording.unlink()  # a directory stands where the recording is: it cannot go
    second.recording.mkdir()
    (second.recording / "x").write_bytes(b"")
    listing = tmp_path / "erase.txt"
    listing.write_text("# from the letters of 7 March\n+7 916 123-45-67\ncode:C2\n\n")

    stopped = run_povtor(
        db_url, "client", "erase", "--file", str(listing), "--yes", "--json", cwd=tmp_path
    )
    assert stopped.returncode == 1
    assert "run the command again" in stopped.stderr
    by_id = {line["id"]: line for line in json_lines(stopped.stdout)}
    assert by_id[first.client_id]["state"] == "done"
    assert by_id[second.client_id]["state"] == "pending"
    assert by_id[second.client_id]["error"].startswith("voice: StorageError")
    assert list(by_id[second.client_id]["removed"]) == ["outreach", "bot"]
    assert (await rows_of(engine, second))["clients"] == 1

    shutil.rmtree(second.recording)
    rerun = run_povtor(db_url, "client", "erase", "--json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    (finished,) = json_lines(rerun.stdout)
    assert (finished["entry"], finished["id"], finished["state"]) == (
        None,
        second.client_id,
        "done",
    )
    assert list(finished["removed"]) == PARTS
    assert set((await rows_of(engine, second)).values()) == {0}


async def test_a_bad_phone_is_refused_before_anything_is_erased(
    engine: AsyncEngine, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    erased = await seed_client(engine, settings, "C1", "+79161234567", 1001)
    result = run_povtor(
        db_url, "client", "erase", "--phone", "+79161234567", "--phone", "12", "--yes",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "entry 2: not a valid phone number" in result.stderr
    assert (await rows_of(engine, erased))["clients"] == 1
