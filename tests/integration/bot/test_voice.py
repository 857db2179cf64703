"""Voice answers: downloaded from the Bot API and transcribed through the Transcriber port."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crm_sync.history.store import SqlHistoryStore
from povtor.domain import Purpose
from povtor.ports import Segment, Transcript
from povtor.settings import Settings
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.bot.test_outreach_messages import attempt_for, linked_user

pytestmark = pytest.mark.telegram
OGG = b"OggS\x00fake-voice-bytes"


class RecordingTranscriber:
    """A Transcriber that reads back what it was given (the voice part is tested elsewhere)."""

    def __init__(self) -> None:
        self.heard: list[bytes] = []

    async def transcribe(self, path: Path) -> Transcript:
        self.heard.append(await asyncio.to_thread(path.read_bytes))
        return Transcript(str(path), 2.0, (Segment(0.0, 2.0, "mono", "курьер опоздал"),))


async def test_a_voice_reason_is_transcribed_and_recorded(
    fake_tg: FakeTelegram, store: SqlHistoryStore, start_bot: Callable[..., Any]
) -> None:
    transcriber = RecordingTranscriber()
    running = await start_bot(transcriber=transcriber)
    client, user = await linked_user(fake_tg, store, 951)
    await running.service.channel.execute(attempt_for(client, Purpose.NPS), client)
    await user.answer_to(await user.press(await user.next_message(), "6"))
    await user.next_message()
    await user.send_voice(OGG)
    assert (await user.next_message()).text.startswith("Спасибо за ответ")
    assert transcriber.heard == [OGG]
    [answer] = await store.list_nps()
    assert answer.score == 6
    assert answer.reason_text == "курьер опоздал"


async def test_without_a_transcriber_the_client_is_asked_to_type(
    fake_tg: FakeTelegram, store: SqlHistoryStore, start_bot: Callable[..., Any]
) -> None:
    running = await start_bot()
    client, user = await linked_user(fake_tg, store, 952)
    await running.service.channel.execute(attempt_for(client, Purpose.NPS), client)
    await user.answer_to(await user.press(await user.next_message(), "9"))
    await user.next_message()
    await user.send_voice(OGG)
    assert "напишите ответ текстом" in (await user.next_message()).text


class HeldTranscriber:
    """A Transcriber that holds each voice answer until the test lets it go."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def transcribe(self, path: Path) -> Transcript:
        self.entered.set()
        await self.release.wait()
        return Transcript(str(path), 2.0, (Segment(0.0, 2.0, "mono", "дорого"),))


async def test_a_voice_answer_being_transcribed_does_not_hold_other_clients(
    fake_tg: FakeTelegram,
    store: SqlHistoryStore,
    start_bot: Callable[..., Any],
    bot_settings: Settings,
) -> None:
    transcriber = HeldTranscriber()
    telegram = bot_settings.telegram.model_copy(update={"page_wait_s": 0.05})
    running = await start_bot(
        bot_settings.model_copy(update={"telegram": telegram}), transcriber=transcriber
    )
    client, talker = await linked_user(fake_tg, store, 953, "C-1")
    other, presser = await linked_user(fake_tg, store, 954, "C-2")
    for who in (client, other):
        await running.service.channel.execute(attempt_for(who, Purpose.NPS), who)
    await talker.answer_to(await talker.press(await talker.next_message(), "5"))
    await talker.next_message()
    survey = await presser.next_message()
    await talker.send_voice(OGG)
    await transcriber.entered.wait()

    # polled after the voice answer, handled while it is still being transcribed
    await presser.answer_to(await presser.press(survey, "10"))
    follow_up = await asyncio.wait_for(presser.next_message(), 30)
    assert follow_up.text

    transcriber.release.set()
    assert (await talker.next_message()).text.startswith("Спасибо за ответ")
    [answer] = await store.list_nps()
    assert (answer.client_id, answer.score, answer.reason_text) == (client.id, 5, "дорого")
