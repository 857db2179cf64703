"""Opt-out and back in, complaints, and the managers' closed loop (alerts, tasks, /nps)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.manager_store import ManagerStore
from crm_sync.history.store import SqlHistoryStore
from povtor.domain import EventKind, Purpose, TaskStatus
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_user import FakeUser, button_texts
from tests.integration.bot.conftest import Running
from tests.integration.bot.test_outreach_messages import attempt_for, linked_user

pytestmark = pytest.mark.telegram


async def invite_manager(fake_tg: FakeTelegram, running: Running, chat_id: int) -> FakeUser:
    repo: ManagerStore = running.service.dispatcher["managers"]
    code = await repo.create_invite("Ольга", timedelta(hours=1))
    manager = FakeUser(fake_tg, chat_id, "Ольга")
    await manager.send_text(f"/start {code}")
    assert "Вы подключены как менеджер, Ольга" in (await manager.next_message()).text
    other = FakeUser(fake_tg, chat_id + 1, "Чужой")
    await other.send_text(f"/start {code}")  # one-time: a second use is refused
    assert (await other.next_message()).text == "Приглашение недействительно или уже использовано."
    return manager


async def test_stop_opts_out_with_time_and_source_and_start_opts_back_in(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, user = await linked_user(fake_tg, store, 701)
    await user.send_text("/stop")
    assert "Вы отписались" in (await user.next_message()).text
    stopped = await store.get_client(client.id)
    assert stopped.opted_out_at is not None
    event = next(e for e in await store.timeline(client.id) if e.kind is EventKind.OPT_OUT)
    assert event.data["source"] == "telegram:/stop"

    outcome = await running_bot.service.channel.execute(
        attempt_for(stopped, Purpose.REORDER), stopped
    )
    assert outcome.detail == "client opted out"
    await user.send_text("/stop")
    assert "уже отписаны" in (await user.next_message()).text

    await user.send_text("/start")
    assert (await user.next_message()).text.startswith("С возвращением!")
    assert (await store.get_client(client.id)).opted_out is False


async def test_help_lists_the_commands(fake_tg: FakeTelegram, running_bot: Running) -> None:
    user = FakeUser(fake_tg, 702)
    await user.send_text("/help")
    text = (await user.next_message()).text
    for command in ("/start", "/stop", "/complaint", "/help"):
        assert command in text


async def test_detractor_alert_reaches_the_manager_who_takes_it_and_plans_a_callback(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    manager = await invite_manager(fake_tg, running_bot, 801)
    client, user = await linked_user(fake_tg, store, 703)
    await running_bot.service.channel.execute(attempt_for(client, Purpose.NPS), client)
    question = await user.next_message()
    await user.answer_to(await user.press(question, "3"))
    assert (await user.next_message()).text == "Что нам улучшить, чтобы вы поставили десятку?"
    await user.send_text("Курьер нагрубил")
    await user.next_message()

    alert = await manager.next_message()
    assert "Низкая оценка NPS: 3" in alert.text
    assert "Анна (C-1)" in alert.text
    assert "+79160000703" in alert.text
    assert "Курьер нагрубил" in alert.text
    assert button_texts(alert) == ["Взять себе", "Решено", "Задача с датой"]
    [task] = await store.list_tasks(status=TaskStatus.OPEN)
    assert task.kind == "detractor"
    assert task.client_id == client.id

    assert await manager.answer_to(await manager.press(alert, "Взять себе")) == "Вы взяли клиента."
    [taken] = await store.list_tasks(status=TaskStatus.IN_PROGRESS)
    assert taken.assignee == "Ольга"
    await manager.answer_to(await manager.press(alert, "Задача с датой"))
    assert button_texts(alert) == ["Завтра", "Через 3 дня", "Через неделю"]
    toast = await manager.answer_to(await manager.press(alert, "Через 3 дня"))
    assert (toast or "").startswith("Задача создана на")
    [callback] = await store.list_tasks(status=TaskStatus.OPEN)
    assert callback.kind == "callback"
    assert callback.assignee == "Ольга"

    await manager.send_text("/tasks")
    tasks_text = (await manager.next_message()).text
    assert "Перезвонить клиенту: Анна" in tasks_text
    assert "Разобраться" in tasks_text

    await manager.answer_to(await manager.press(alert, "Решено"))
    assert "Решено (Ольга)" in alert.text
    assert alert.reply_markup is None
    assert [t.id for t in await store.list_tasks(status=TaskStatus.DONE)] == [task.id]


async def test_complaint_alerts_managers_and_nps_command_shows_the_week(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    manager = await invite_manager(fake_tg, running_bot, 803)
    client, user = await linked_user(fake_tg, store, 704)
    await user.send_text("/complaint")
    assert "Опишите" in (await user.next_message()).text
    await user.send_text("Привезли не тот товар")
    assert "жалоба передана" in (await user.next_message()).text
    alert = await manager.next_message()
    assert "Жалоба клиента" in alert.text
    assert "Привезли не тот товар" in alert.text
    complaints = [e for e in await store.timeline(client.id) if e.kind is EventKind.COMPLAINT]
    assert [e.summary for e in complaints] == ["Привезли не тот товар"]

    await manager.send_text("/nps")
    report = (await manager.next_message()).text
    assert "+30.0" in report
    assert "Ответов: 10 из 20" in report

    await user.send_text("/nps")  # not for clients
    assert (await user.next_message()).text == "Эта команда только для менеджеров."
