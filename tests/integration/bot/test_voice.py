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
