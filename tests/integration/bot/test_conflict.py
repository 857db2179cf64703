"""Another program polling the same bot: Telegram answers 409; the bot says so once, keeps
sending, and polls again once the other one is gone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from povtor.domain import ChannelKind
from povtor.health import HealthBoard, HealthState
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.telegram_user import FakeUser


async def test_a_second_poller_makes_the_bot_degraded_not_dead(
    fake_tg: FakeTelegram, start_bot: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    board = HealthBoard()
    conflict = asyncio.Event()
    board.on_change(lambda c: conflict.set() if c.state is HealthState.DEGRADED else None)
    async with aiohttp.ClientSession() as http:
        # the other program's long poll is waiting when the bot starts
        url = f"{fake_tg.base_url}/bot{TOKEN}/getUpdates"

        async def other_poller() -> int:
            async with http.post(url, data={"timeout": "3"}) as response:
                return response.status

        other = asyncio.create_task(other_poller())
        await fake_tg.wait_for(lambda: fake_tg.waiting_polls() == 1)
        running = await start_bot(health=board)
        await asyncio.wait_for(conflict.wait(), 15)  # the bot heard Telegram's 409
        assert fake_tg.conflicts >= 1
        assert "409 Conflict" in board.components["telegram"].reason
        assert board.unavailable(ChannelKind.TELEGRAM) is None  # messages still go out
        assert await other == 200  # the other program stops polling

    user = FakeUser(fake_tg, 930)
    await user.send_text("/help")
    assert "/complaint" in (await user.next_message(within=15)).text
    assert board.problems() == []
    messages = [r.getMessage() for r in caplog.records if r.name == "povtor.health"]
    assert sum("telegram degraded" in m for m in messages) == 1, messages
    assert any("telegram recovered" in m for m in messages), messages
    assert not running.task.done()
