"""Linking a chat to a client: signed deep links and the client's own shared contact."""

from __future__ import annotations

import pytest

from bot.tokens import make_link_token
from crm_sync.history.store import SqlHistoryStore
from povtor.domain import TaskStatus
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_user import FakeUser, button_texts
from tests.integration.bot.conftest import Running, make_client

pytestmark = pytest.mark.telegram


async def test_deep_link_links_the_chat_and_cannot_be_reused_by_another_chat(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client = await make_client(store)
    token = make_link_token("test-secret-key", client.id)
    anna = FakeUser(fake_tg, 501)
    await anna.send_text(f"/start {token}")
    reply = await anna.next_message()
    assert reply.text.startswith("Готово, Анна!")
    linked = await store.get_client(client.id)
    assert linked.telegram_chat_id == 501

    thief = FakeUser(fake_tg, 502, "Вор")
    await thief.send_text(f"/start {token}")
    refused = await thief.next_message()
    assert "недействительна" in refused.text
    assert (await store.get_client(client.id)).telegram_chat_id == 501
    assert await store.find_client_by_chat(502) is None

    await anna.send_text(f"/start {token}")  # the same chat may open its link again
    assert (await anna.next_message()).text.startswith("Готово")


async def test_forged_or_mangled_token_links_nothing(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client = await make_client(store)
    forged = make_link_token("another-key", client.id)
    real = make_link_token("test-secret-key", client.id)
    mangled = real[:-2] + ("AA" if real[-2:] != "AA" else "BB")
    user = FakeUser(fake_tg, 503)
    for token in (forged, mangled, "c" + "A" * 44):
        await user.send_text(f"/start {token}")
        answer = await user.next_message()
        assert "недействительна" in answer.text
        assert button_texts(answer) == ["Поделиться номером"]
    assert (await store.get_client(client.id)).telegram_chat_id is None


async def test_own_shared_contact_links_the_client(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client = await make_client(store, phone="+79161234567")
    user = FakeUser(fake_tg, 504)
    await user.send_contact("79161234567")  # Telegram sends it without the plus
    assert (await user.next_message()).text.startswith("Готово, Анна!")
    assert (await store.get_client(client.id)).telegram_chat_id == 504


async def test_someone_elses_contact_is_refused_and_reveals_nothing(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client = await make_client(store, phone="+79161234567", name="Анна Секретова")
    user = FakeUser(fake_tg, 505, "Вор")
    await user.send_contact("+79161234567", user_id=999)
    answer = await user.next_message()
    assert "собственным номером" in answer.text
    await user.send_contact("+79161234567", user_id=None)  # a contact card without a user
    answer = await user.next_message()
    assert "собственным номером" in answer.text
    assert "Секретова" not in answer.text
    assert (await store.get_client(client.id)).telegram_chat_id is None


async def test_unknown_number_gets_a_polite_answer_and_a_manager_task(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    await make_client(store, phone="+79161234567")
    user = FakeUser(fake_tg, 506)
    await user.send_contact("+79035550000")
    answer = await user.next_message()
    assert "не нашли" in answer.text
    tasks = await store.list_tasks(status=TaskStatus.OPEN)
    assert [t.kind for t in tasks] == ["unknown_contact"]
    assert "+79035550000" in (tasks[0].note or "")
    assert await store.find_client_by_chat(506) is None
