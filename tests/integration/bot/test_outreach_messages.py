"""Reminders, NPS surveys and win-back through the Telegram channel, answered by a user."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.tokens import make_link_token
from crm_sync.history.store import SqlHistoryStore
from povtor.domain import (
    Attempt,
    AttemptState,
    ChannelKind,
    Client,
    EventKind,
    OutcomeKind,
    Purpose,
    TaskStatus,
)
from povtor.ports import NewTask
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_user import FakeUser, button_texts
from tests.integration.bot.conftest import RecordingSink, Running, make_client

pytestmark = pytest.mark.telegram
_ids = itertools.count(1)


def attempt_for(client: Client, purpose: Purpose) -> Attempt:
    attempt_id = next(_ids)
    return Attempt(
        id=attempt_id,
        client_id=client.id,
        purpose=purpose,
        channel=ChannelKind.TELEGRAM,
        state=AttemptState.IN_PROGRESS,
        not_before=datetime.now(UTC),
        idempotency_key=f"{purpose.value}:{client.id}:{attempt_id}",
    )


async def linked_user(
    fake_tg: FakeTelegram, store: SqlHistoryStore, chat_id: int, external_id: str = "C-1"
) -> tuple[Client, FakeUser]:
    client = await make_client(store, external_id, phone=f"+7916{chat_id:07d}")
    user = FakeUser(fake_tg, chat_id)
    await user.send_text(f"/start {make_link_token('test-secret-key', client.id)}")
    await user.next_message()
    return await store.get_client(client.id), user


async def test_reminder_shows_the_last_order_and_each_button_counts_once(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running, sink: RecordingSink
) -> None:
    client, user = await linked_user(fake_tg, store, 601)
    attempt = attempt_for(client, Purpose.REORDER)
    outcome = await running_bot.service.channel.execute(attempt, client)
    assert outcome.kind is OutcomeKind.DELIVERED
    reminder = await user.next_message()
    assert "14.03.2025" in reminder.text
    assert "Кофе в зёрнах 1 кг × 2" in reminder.text
    assert "2 490 ₽" in reminder.text
    assert button_texts(reminder) == ["Повторить заказ", "Напомнить позже", "Не нужно"]

    first = await user.press(reminder, "Повторить заказ")
    second = await user.press(reminder, "Повторить заказ")  # a double tap: handled concurrently
    toasts = sorted([await user.answer_to(first) or "", await user.answer_to(second) or ""])
    assert toasts == [
        "Вы уже ответили, спасибо!",
        "Отлично! Менеджер оформит заказ и свяжется с вами.",
    ]
    assert sink.reports == [
        (
            attempt.id,
            OutcomeKind.ANSWERED,
            {"purpose": "reorder", "button": "repeat", "message": outcome.ref},
        )
    ]
    presses = [e for e in await store.timeline(client.id) if e.kind is EventKind.MESSAGE_IN]
    assert len(presses) == 1
    tasks = await store.list_tasks(status=TaskStatus.OPEN)
    assert [t.kind for t in tasks] == ["reorder"]

    # the same attempt executed again (a worker retry) does not message the client twice
    again = await running_bot.service.channel.execute(attempt, client)
    assert again.ref == outcome.ref
    assert len(user.messages()) == 2


async def test_a_message_in_flight_when_its_worker_was_killed_is_not_sent_again(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, user = await linked_user(fake_tg, store, 603)
    attempt = attempt_for(client, Purpose.REORDER)
    # the killed worker's execution: its request had started, its answer was never recorded
    outbox = running_bot.service.dispatcher["outbox"]
    queued = await outbox.add_outbox(
        chat_id=603,
        purpose="reorder",
        text="Пора повторить заказ?",
        client_id=client.id,
        attempt_id=attempt.id,
        dedup_key=f"attempt:{attempt.id}:{attempt.attempt_no}",
    )
    await outbox.start_send(queued.id)
    seen = len(user.messages())
    outcome = await running_bot.service.channel.execute(attempt, client)  # taken over
    assert outcome.kind is OutcomeKind.DELIVERED
    assert outcome.ref == f"message:{queued.id}"
    assert len(user.messages()) == seen  # at most once: nothing went to the chat again
    message = await running_bot.service.dispatcher["outbox"].get_outbox(queued.id)
    assert message is not None
    assert message.error is not None
    assert "not sent again" in message.error


async def test_a_message_queued_by_a_killed_worker_before_sending_is_sent_once(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, user = await linked_user(fake_tg, store, 604)
    attempt = attempt_for(client, Purpose.REORDER)
    await running_bot.service.dispatcher["outbox"].add_outbox(  # killed before its request started
        chat_id=604,
        purpose="reorder",
        text="Пора повторить заказ?",
        client_id=client.id,
        attempt_id=attempt.id,
        dedup_key=f"attempt:{attempt.id}:{attempt.attempt_no}",
    )
    seen = len(user.messages())
    outcome = await running_bot.service.channel.execute(attempt, client)
    assert outcome.kind is OutcomeKind.DELIVERED
    reminder = await user.next_message()
    assert len(user.messages()) == seen + 1
    assert "повторить заказ" in reminder.text
    again = await running_bot.service.channel.execute(attempt, client)
    assert again.ref == outcome.ref
    assert len(user.messages()) == seen + 1


async def test_full_survey_survives_a_worker_restart(
    fake_tg: FakeTelegram,
    store: SqlHistoryStore,
    start_bot: Callable[..., Any],
    sink: RecordingSink,
) -> None:
    first = await start_bot()
    client, user = await linked_user(fake_tg, store, 602)
    attempt = attempt_for(client, Purpose.NPS)
    await first.service.channel.execute(attempt, client)
    question = await user.next_message()
    assert "от 0 до 10" in question.text
    assert button_texts(question) == [str(s) for s in range(11)]
    await first.shutdown()  # the worker goes away with the question open

    second = await start_bot()
    await user.send_text("твёрдая восьмёрка")
    follow_up = await user.next_message()
    assert follow_up.text == "Что нам улучшить, чтобы вы поставили десятку?"
    await fake_tg.wait_for(lambda: question.edits == 1)
    assert question.text.endswith("Ваша оценка: 8. Спасибо!")
    assert question.reply_markup is None
    await second.shutdown()  # ... and again between the score and the reason

    await start_bot()
    await user.send_text("Доставка опоздала на три дня")
    assert (await user.next_message()).text == "Спасибо за ответ! Мы всё прочитаем."
    assert sink.reports == [(attempt.id, OutcomeKind.ANSWERED, {"purpose": "nps", "score": 8})]
    answers = await store.list_nps()
    assert [(a.score, a.reason_text, a.reason_category) for a in answers] == [
        (8, "Доставка опоздала на три дня", answers[0].reason_category)
    ]
    assert answers[0].reason_category is not None
    assert answers[0].reason_category.value == "delivery"


async def test_promoter_is_asked_what_made_the_score_high_and_a_second_press_is_ignored(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running, sink: RecordingSink
) -> None:
    client, user = await linked_user(fake_tg, store, 603)
    await running_bot.service.channel.execute(attempt_for(client, Purpose.NPS), client)
    question = await user.next_message()
    as_first_shown = dataclasses.replace(question)
    pressed = await user.press(question, "10")
    assert await user.answer_to(pressed) == "Ваша оценка: 10. Спасибо!"
    again = await user.press(as_first_shown, "3")  # an old keyboard in the client's app
    assert await user.answer_to(again) == "Вы уже ответили, спасибо!"
    assert (await user.next_message()).text == "Что позволило нам получить такую высокую оценку?"
    assert [r[2]["score"] for r in sink.reports] == [10]


async def test_winback_asks_why_and_what_would_bring_the_client_back(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, user = await linked_user(fake_tg, store, 604)
    await running_bot.service.channel.execute(attempt_for(client, Purpose.WINBACK), client)
    question = await user.next_message()
    assert "Почему вы отказались от покупок" in question.text
    await user.send_text("Слишком дорого стало")
    assert "изменили своё решение" in (await user.next_message()).text
    await user.send_text("Скидка для постоянных")
    assert (await user.next_message()).text.startswith("Спасибо за ответ")
    answers = await store.list_nps()
    assert [(a.score, a.reason_text) for a in answers] == [(None, "Слишком дорого стало")]


async def test_unlinked_opted_out_and_blocked_clients_get_no_message(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    channel = running_bot.service.channel
    lonely = await make_client(store, "C-9", phone="+79160000009")
    outcome = await channel.execute(attempt_for(lonely, Purpose.REORDER), lonely)
    assert outcome.kind is OutcomeKind.UNREACHABLE

    client, _user = await linked_user(fake_tg, store, 605, "C-10")
    fake_tg.block(605)
    outcome = await channel.execute(attempt_for(client, Purpose.REORDER), client)
    assert outcome.kind is OutcomeKind.UNREACHABLE
    assert "blocked" in outcome.detail
    assert (await store.get_client(client.id)).telegram_reachable is False


async def test_a_score_without_its_reason_is_kept_when_the_next_survey_comes(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, user = await linked_user(fake_tg, store, 606)
    channel = running_bot.service.channel
    await channel.execute(attempt_for(client, Purpose.NPS), client)
    await user.answer_to(await user.press(await user.next_message(), "7"))
    await user.next_message()  # "what should we improve?" stays unanswered
    assert await store.list_nps() == []
    await channel.execute(attempt_for(client, Purpose.NPS), client)
    answers = await store.list_nps()
    assert [(a.score, a.reason_text) for a in answers] == [(7, None)]


async def test_a_detractor_gets_one_task_shared_with_the_outreach_engine(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, user = await linked_user(fake_tg, store, 607)
    attempt = attempt_for(client, Purpose.NPS)
    await running_bot.service.channel.execute(attempt, client)
    await user.answer_to(await user.press(await user.next_message(), "2"))
    await user.next_message()
    await store.create_task(  # what the outreach engine's follow-up opens for this attempt
        NewTask(
            client_id=client.id,
            kind="detractor",
            title="Низкая оценка NPS (2)",
            due_at=datetime.now(UTC),
            dedup_key=f"outreach:task:{attempt.id}",
        )
    )
    await user.send_text("Долго везли")
    await user.next_message()
    tasks = await store.list_tasks(status=TaskStatus.OPEN)
    assert [t.kind for t in tasks] == ["detractor"]
