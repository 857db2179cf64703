"""A long stretch of 429 Too Many Requests from Telegram (compressed: a storm of consecutive
429s asking for 1 s each; scripts/soak.py runs the long ones): nothing is lost or sent twice,
every sender waits as Telegram asks, the worker's health says so once, and it recovers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from bot.outbox_store import OutboxStore
from bot.records import SendStatus
from crm_sync.history.store import SqlHistoryStore
from povtor.domain import OutcomeKind, Purpose
from povtor.health import HealthBoard, HealthState
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.bot.test_outreach_messages import attempt_for, linked_user

pytestmark = pytest.mark.telegram

STORM = 12  # consecutive 429s, each asking for 1 s
CHATS = 3


async def test_a_storm_of_429s_is_waited_out_shown_degraded_once_and_nothing_is_doubled(
    fake_tg: FakeTelegram,
    store: SqlHistoryStore,
    start_bot: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    board = HealthBoard()
    running = await start_bot(health=board)
    pairs = [await linked_user(fake_tg, store, 930 + i, f"C-{i}") for i in range(CHATS)]
    assert board.components["telegram"].state is HealthState.OK
    caplog.set_level(logging.INFO, logger="povtor.health")
    fake_tg.fail_next(STORM, 429, methods={"sendMessage"}, retry_after=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sends = asyncio.gather(
        *(running.service.channel.execute(attempt_for(c, Purpose.REORDER), c) for c, _ in pairs)
    )
    degraded = None
    while not sends.done():  # the board is read while the storm lasts
        entry = board.components["telegram"]
        if entry.state is HealthState.DEGRADED:
            degraded = entry
        await asyncio.wait([sends], timeout=0.05)
    outcomes = await sends
    took = loop.time() - started

    assert [o.kind for o in outcomes] == [OutcomeKind.DELIVERED] * CHATS
    assert [s for _, s in fake_tg.refused] == [429] * STORM
    # each 429 held every sender for its second: at most one try per chat in each second
    assert took >= STORM / CHATS
    for _, user in pairs:
        assert len(user.messages()) == 2  # the link confirmation and exactly one reminder
    repo: OutboxStore = running.service.dispatcher["outbox"]
    assert await repo.outbox_counts() == {SendStatus.SENT.value: 2 * CHATS}
    assert degraded is not None
    assert "429 Too Many Requests" in degraded.reason
    assert board.components["telegram"].state is HealthState.OK  # recovered
    said = [r.getMessage() for r in caplog.records if r.name == "povtor.health"]
    assert len([m for m in said if "telegram degraded" in m]) == 1, said  # once, not per 429
    assert len([m for m in said if "telegram recovered" in m]) == 1, said
