"""`povtor client link` and `povtor manager invite` through the console script."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.manager_store import ManagerStore
from bot.tokens import read_link_token
from crm_sync.history.store import SqlHistoryStore
from povtor.db import session_factory
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN, FakeTelegram
from tests.integration.bot.conftest import make_client
from tests.integration.bot.worker_proc import free_port

pytestmark = pytest.mark.telegram
POVTOR = str(Path(sys.executable).with_name("povtor"))


async def povtor(
    db_url: str, tmp_path: Path, *args: str, env_extra: dict[str, str] | None = None
) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "POVTOR_DATABASE_URL": db_url,
        "POVTOR_DATA_DIR": str(tmp_path),
        "POVTOR_SECRET_KEY": "cli-secret",
        "POVTOR_TELEGRAM_BOT_USERNAME": "@shop_bot",
        **(env_extra or {}),
    }
    env = {k: v for k, v in env.items() if v}  # an empty value: the setting is not given
    proc = await asyncio.create_subprocess_exec(
        POVTOR,
        *args,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_client_link_prints_a_signed_deep_link(
    db_url: str, tmp_path: Path, store: SqlHistoryStore
) -> None:
    client = await make_client(store, "CRM-77", order=False)
    code, out, _ = await povtor(db_url, tmp_path, "client", "link", "CRM-77")
    assert code == 0
    match = re.fullmatch(r"https://t\.me/shop_bot\?start=([A-Za-z0-9_-]{1,64})\n", out)
    assert match is not None
    claim = read_link_token("cli-secret", match.group(1), ttl=timedelta(days=1))
    assert claim is not None
    assert claim.client_id == client.id

    code, _, err = await povtor(db_url, tmp_path, "client", "link", "NOPE")
    assert code == 1
    assert "NOPE" in err


async def test_manager_invite_is_usable_once(
    db_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    code, out, _ = await povtor(db_url, tmp_path, "manager", "invite", "--name", "Ольга")
    assert code == 0
    invite = out.strip().rsplit("start=", 1)[1]
    repo = ManagerStore(session_factory(engine))
    manager = await repo.use_invite(invite, 1001, "")
    assert manager is not None
    assert manager.name == "Ольга"
    assert await repo.use_invite(invite, 1002, "") is None


async def test_invite_asks_the_configured_bot_api_for_the_username(
    db_url: str, tmp_path: Path, fake_tg: FakeTelegram
) -> None:
    token_only = {
        "POVTOR_TELEGRAM_BOT_USERNAME": "",
        "POVTOR_TELEGRAM_BOT_TOKEN": TOKEN,
        "POVTOR_TELEGRAM_API_BASE": fake_tg.base_url,
    }
    code, out, err = await povtor(db_url, tmp_path, "manager", "invite", env_extra=token_only)
    assert code == 0, err
    assert out.startswith(f"https://t.me/{BOT_USERNAME}?start=m")
    assert [method for method, _ in fake_tg.calls] == ["getMe"]


async def test_invite_says_in_one_line_when_the_bot_api_cannot_be_reached(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    closed = {
        "POVTOR_TELEGRAM_BOT_USERNAME": "",
        "POVTOR_TELEGRAM_BOT_TOKEN": TOKEN,
        "POVTOR_TELEGRAM_API_BASE": f"http://127.0.0.1:{port}",
    }
    code, out, err = await povtor(db_url, tmp_path, "manager", "invite", env_extra=closed)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1, err
    assert f"cannot reach the Bot API at 127.0.0.1:{port}" in err
    assert "POVTOR_TELEGRAM_BOT_USERNAME" in err
    assert TOKEN not in err
