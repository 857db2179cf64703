"""The dispatcher's routers in both modes: presses reach the router's handler when Telegram
posts them to the webhook, and the managers' filter keeps manager commands to managers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crm_sync.history.store import SqlHistoryStore
from povtor.domain import EventKind, OutcomeKind, Purpose
from povtor.settings import Settings
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_user import button_texts
from tests.integration.bot.conftest import FixedReports, RecordingSink, Running
from tests.integration.bot.test_clients_and_managers import invite_manager
from tests.integration.bot.test_outreach_messages import attempt_for, linked_user

pytestmark = pytest.mark.telegram


async def test_a_reminder_press_posted_to_the_webhook_is_recorded_once_by_the_router(
    fake_tg: FakeTelegram,
    store: SqlHistoryStore,
    start_bot: Callable[..., Any],
    webhook_settings: Settings,
    sink: RecordingSink,
) -> None:
    running: Running = await start_bot(webhook_settings)
    await fake_tg.wait_for(lambda: fake_tg.webhook is not None)
    client, user = await linked_user(fake_tg, store, 931)  # linked through the webhook too
    attempt = attempt_for(client, Purpose.REORDER)
    outcome = await running.service.channel.execute(attempt, client)
    reminder = await user.next_message()
    assert button_texts(reminder) == ["Повторить заказ", "Напомнить позже", "Не нужно"]

    first = await user.press(reminder, "Не нужно")
    assert await user.answer_to(first) == "Поняли, больше не напоминаем об этом заказе."
    second = await user.press(reminder, "Не нужно")  # pressed again: counted once
    assert await user.answer_to(second) == "Вы уже ответили, спасибо!"
    assert sink.reports == [
        (
            attempt.id,
            OutcomeKind.ANSWERED,
            {"purpose": "reorder", "button": "no", "message": outcome.ref},
        )
    ]
    answers = [e for e in await store.timeline(client.id) if e.kind is EventKind.MESSAGE_IN]
    assert [e.data for e in answers] == [{"purpose": "reorder", "button": "no"}]
    assert fake_tg.webhook is not None
    assert set(fake_tg.webhook.statuses) == {200}


async def test_manager_commands_are_refused_to_a_client_by_the_managers_filter(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    reports = running_bot.service.dispatcher["reports"]
    assert isinstance(reports, FixedReports)
    _, user = await linked_user(fake_tg, store, 932)
    for command in ("/nps", "/tasks"):
        await user.send_text(command)
        assert (await user.next_message()).text == "Эта команда только для менеджеров."
    assert reports.asked == []  # the manager's handler never ran
    await user.send_text("/help")
    assert "/tasks" not in (await user.next_message()).text

    manager = await invite_manager(fake_tg, running_bot, 933)
    await manager.send_text("/tasks")
    assert (await manager.next_message()).text == "Открытых задач нет."
    await manager.send_text("/nps")
    assert "Ответов: 10 из 20" in (await manager.next_message()).text
    assert len(reports.asked) == 1
    await manager.send_text("/help")
    assert "/tasks" in (await manager.next_message()).text
