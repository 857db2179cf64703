"""Delivery for real: 429 storms, 403, 502, outbox statuses, webhook secrets, idempotency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from bot.chat_state import ChatStates
from bot.outbox_store import OutboxStore
from bot.records import SendStatus
from crm_sync.history.store import SqlHistoryStore
from povtor.domain import OutcomeKind, Purpose
from povtor.settings import Settings
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_user import FakeUser
from tests.integration.bot.conftest import Running
from tests.integration.bot.test_outreach_messages import attempt_for, linked_user

pytestmark = pytest.mark.telegram


async def test_a_429_storm_is_waited_out_and_nothing_is_lost(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    pairs = [await linked_user(fake_tg, store, 900 + i, f"C-{i}") for i in range(6)]
    fake_tg.fail_next(4, 429, methods={"sendMessage"}, retry_after=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcomes = await asyncio.gather(
        *(
            running_bot.service.channel.execute(attempt_for(c, Purpose.REORDER), c)
            for c, _ in pairs
        )
    )
    assert [o.kind for o in outcomes] == [OutcomeKind.DELIVERED] * 6
    assert [s for _, s in fake_tg.refused] == [429] * 4
    assert loop.time() - started >= 1.0  # retry_after was honoured
    for _, user in pairs:
        assert len(user.messages()) == 2  # the link confirmation and exactly one reminder
    outbox: OutboxStore = running_bot.service.dispatcher["outbox"]
    counts = await outbox.outbox_counts()
    assert counts == {SendStatus.SENT.value: 12}


async def test_502_and_500_are_retried_with_backoff(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, user = await linked_user(fake_tg, store, 911)
    fake_tg.fail_next(2, 502, methods={"sendMessage"})  # an HTML page from the proxy
    fake_tg.fail_next(1, 500, methods={"sendMessage"})
    outcome = await running_bot.service.channel.execute(
        attempt_for(client, Purpose.REORDER), client
    )
    assert outcome.kind is OutcomeKind.DELIVERED
    assert [s for _, s in fake_tg.refused] == [502, 502, 500]
    assert len(user.messages()) == 2


async def test_a_dropped_connection_is_retried(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, user = await linked_user(fake_tg, store, 914)
    fake_tg.fail_next(2, 0, methods={"sendMessage"})
    outcome = await running_bot.service.channel.execute(
        attempt_for(client, Purpose.REORDER), client
    )
    assert outcome.kind is OutcomeKind.DELIVERED
    assert [s for _, s in fake_tg.refused] == [0, 0]
    assert len(user.messages()) == 2


async def test_a_server_that_keeps_failing_leaves_a_failed_status(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, _user = await linked_user(fake_tg, store, 912)
    fake_tg.fail_next(50, 502, methods={"sendMessage"})
    outcome = await running_bot.service.channel.execute(
        attempt_for(client, Purpose.REORDER), client
    )
    assert outcome.kind is OutcomeKind.FAILED
    outbox: OutboxStore = running_bot.service.dispatcher["outbox"]
    message = await outbox.get_outbox(int((outcome.ref or "message:0").split(":")[1]))
    assert message is not None
    assert message.status is SendStatus.FAILED
    assert message.tries == 1
    assert len(fake_tg.refused) == 6
    assert (await store.get_client(client.id)).telegram_reachable is True


async def test_403_marks_the_chat_unreachable_for_the_outreach_engine(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, _ = await linked_user(fake_tg, store, 913)
    fake_tg.block(913)
    outcome = await running_bot.service.channel.execute(attempt_for(client, Purpose.NPS), client)
    assert outcome.kind is OutcomeKind.UNREACHABLE
    assert (await store.get_client(client.id)).telegram_reachable is False
    service = running_bot.service
    states = ChatStates(service.fsm, service.bot.id)
    assert await states.get_state(913) is None  # no survey is waiting for a blocked chat
    counts = await service.dispatcher["outbox"].outbox_counts()
    assert counts[SendStatus.UNREACHABLE.value] == 1


async def test_webhook_accepts_only_the_right_secret_and_handles_each_update_once(
    fake_tg: FakeTelegram,
    store: SqlHistoryStore,
    start_bot: Callable[..., Any],
    webhook_settings: Settings,
) -> None:
    await start_bot(webhook_settings)
    await fake_tg.wait_for(lambda: fake_tg.webhook is not None)
    assert fake_tg.webhook is not None
    assert fake_tg.webhook.secret == "s3cret-Token_1"
    user = FakeUser(fake_tg, 920)
    await user.send_text("/help")  # delivered by the fake with the secret header
    assert "/complaint" in (await user.next_message()).text
    hook = fake_tg.webhook
    await fake_tg.wait_for(lambda: hook.statuses == [200])

    url = webhook_settings.telegram.webhook_url or ""
    update = {
        "update_id": 5,
        "message": {
            "message_id": 1,
            "date": 1700000000,
            "chat": {"id": 920, "type": "private", "first_name": "Анна"},
            "from": {"id": 920, "is_bot": False, "first_name": "Анна"},
            "text": "/help",
        },
    }
    header = "X-Telegram-Bot-Api-Secret-Token"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {header: "wrong"}, {header: "s3cret-Token_"}):
            async with http.post(url, data=json.dumps(update), headers=headers) as response:
                assert response.status == 401
        assert len(user.messages()) == 1  # nothing was handled
        for _ in range(2):  # Telegram redelivers: handled once
            async with http.post(url, json=update, headers={header: "s3cret-Token_1"}) as r:
                assert r.status == 200
    await user.next_message()
    assert len(user.messages()) == 2


async def test_webhook_is_served_on_the_path_of_its_url_and_other_paths_are_logged(
    fake_tg: FakeTelegram,
    start_bot: Callable[..., Any],
    webhook_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = webhook_settings.telegram.webhook_port
    telegram = webhook_settings.telegram.model_copy(
        update={"webhook_url": f"http://127.0.0.1:{port}/hooks/tg-7f3a"}
    )
    await start_bot(webhook_settings.model_copy(update={"telegram": telegram}))
    await fake_tg.wait_for(lambda: fake_tg.webhook is not None)
    assert fake_tg.webhook is not None
    assert fake_tg.webhook.url == f"http://127.0.0.1:{port}/hooks/tg-7f3a"
    user = FakeUser(fake_tg, 921)
    await user.send_text("/help")  # the fake posts to the URL it was told: it is served
    assert "/complaint" in (await user.next_message()).text

    header = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(
                f"http://127.0.0.1:{port}/telegram/webhook", json={}, headers=header
            ) as response:
                assert response.status == 404
    wrong = [r for r in caplog.records if "/telegram/webhook answered 404" in r.getMessage()]
    assert len(wrong) == 1  # logged once per path
    assert "/hooks/tg-7f3a" in wrong[0].getMessage()
