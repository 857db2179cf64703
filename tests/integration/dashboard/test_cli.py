"""``povtor user ...`` through the console script, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from dashboard.passwords import Passwords
from dashboard.roles import Role
from dashboard.users import UserStore
from povtor.db import session_factory
from tests.integration.dashboard.conftest import dashboard_settings

POVTOR = str(Path(sys.executable).parent / "povtor")


async def _povtor(db_url: str, data_dir: Path, *args: str, stdin: str = "") -> tuple[int, str]:
    env = {
        **os.environ,
        "POVTOR_DATABASE_URL": db_url,
        "POVTOR_DATA_DIR": str(data_dir),
        "POVTOR_DASHBOARD_ARGON2_TIME_COST": "1",
        "POVTOR_DASHBOARD_ARGON2_MEMORY_KIB": "1024",
        "POVTOR_DASHBOARD_ARGON2_PARALLELISM": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        POVTOR,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await proc.communicate(stdin.encode())
    return proc.returncode or 0, out.decode()


async def test_user_add_list_and_passwd(engine: AsyncEngine, db_url: str, tmp_path: Path) -> None:
    users = UserStore(session_factory(engine))
    passwords = Passwords(dashboard_settings())
    code, out = await _povtor(
        db_url, tmp_path, "user", "add", "Anna", "--role", "viewer", "--password-stdin",
        stdin="первый-пароль-1\n",
    )  # fmt: skip
    assert code == 0, out
    code, out = await _povtor(db_url, tmp_path, "user", "add", "anna", "--password-stdin",
                              stdin="другой-пароль-2\n")  # fmt: skip
    assert code == 1
    assert "уже есть" in out
    code, out = await _povtor(db_url, tmp_path, "user", "add", "bob", "--password-stdin",
                              stdin="short\n")  # fmt: skip
    assert code == 2
    code, out = await _povtor(db_url, tmp_path, "user", "list", "--json")
    assert code == 0, out
    assert [json.loads(line) for line in out.splitlines()] == [
        {"login": "anna", "role": "viewer", "disabled": False}
    ]
    found = await users.credentials("anna")
    assert found is not None
    assert found[0].role is Role.VIEWER
    assert await passwords.verify(found[1], "первый-пароль-1")
    code, out = await _povtor(
        db_url, tmp_path, "user", "passwd", "anna", "--password-stdin", stdin="новый-пароль-3\n"
    )
    assert code == 0, out
    found = await users.credentials("anna")
    assert found is not None
    assert await passwords.verify(found[1], "новый-пароль-3")
    assert not await passwords.verify(found[1], "первый-пароль-1")
