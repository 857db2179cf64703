"""/offers: the bot asks for consent to offers and records the answer with its history."""

from __future__ import annotations

import pytest

from crm_sync.history.store import SqlHistoryStore
from povtor.domain import ConsentChannel, ContactKind, EventKind
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.bot.conftest import Running
from tests.integration.bot.test_outreach_messages import linked_user

pytestmark = pytest.mark.telegram
ADS = ContactKind.ADVERTISING


async def test_offers_records_consent_to_advertising_and_its_withdrawal(
    fake_tg: FakeTelegram, store: SqlHistoryStore, running_bot: Running
) -> None:
    client, user = await linked_user(fake_tg, store, 731)
    await user.send_text("/offers")
    question = await user.next_message()
    assert "предложения" in question.text
    assert "не присылаем" in question.text  # nothing recorded yet

    toast = await user.answer_to(await user.press(question, "Да, присылайте"))
    assert toast == "Спасибо! Будем присылать предложения."
    agreed = await store.get_client(client.id)
    for channel in (ConsentChannel.TELEGRAM, ConsentChannel.CALL):
        consent = agreed.consent_for(channel, ADS)
        assert consent is not None
        assert consent.granted is True
        assert consent.source == "telegram:/offers"

    await user.send_text("/offers")
    again = await user.next_message()
    assert "разрешены" in again.text
    await user.answer_to(await user.press(again, "Нет, не нужно"))
    refused = (await store.get_client(client.id)).consent_for(ConsentChannel.CALL, ADS)
    assert refused is not None
    assert refused.granted is False
    history = [e for e in await store.timeline(client.id) if e.kind is EventKind.CONSENT]
    assert [e.data["granted"] for e in history if e.data.get("kind") == ADS] == [
        False,
        False,
        True,
        True,
    ]  # newest first: the withdrawal, then the consent, each for messages and calls
