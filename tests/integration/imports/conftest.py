"""Helpers for import tests: write files in the shapes real exports come in."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

POVTOR = Path(sys.executable).with_name("povtor")


def write_csv(
    path: Path, rows: list[list[object]], *, encoding: str = "utf-8", delimiter: str = ";"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def read_rejects(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f, delimiter=";"))[1:]


def run_povtor(db_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real ``povtor`` console script in a subprocess, on the test database."""
    env = {
        **os.environ,
        "POVTOR_DATABASE_URL": db_url,
        "POVTOR_LOG_LEVEL": "WARNING",
        "POVTOR_DATA_DIR": str(cwd / "data"),
    }
    return subprocess.run(
        [str(POVTOR), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def last_json(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no output on stdout"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder
