"""End-of-utterance detection and timeouts of a listening session, on synthetic audio."""

from __future__ import annotations

import math
from array import array
from collections.abc import AsyncIterator

import pytest

from voice.listen import ListenConfig, Listener, ListenSession

SILENCE = bytes(320)
LOUD = array(
    "h", (int(5000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(160))
).tobytes()


class CountingRecognizer:
    """Says how many loud frames it was fed per utterance."""

    def __init__(self) -> None:
        self.loud = 0

    def accept(self, pcm: bytes) -> str | None:
        self.loud += pcm == LOUD
        return None

    def final(self) -> str:
        text, self.loud = f"loud {self.loud}", 0
        return text


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    made = Listener(CountingRecognizer, threads=2)
    yield made
    made.close()


def feed(session: ListenSession, frame: bytes, seconds: float) -> None:
    for _ in range(round(seconds / 0.02)):
        session.feed(frame)


async def test_utterance_ends_after_the_configured_silence(listener: Listener) -> None:
    session = listener.open(ListenConfig(end_silence_s=0.8))
    session.arm()
    feed(session, SILENCE, 0.5)
    feed(session, LOUD, 1.0)
    feed(session, SILENCE, 0.79)
    feed(session, SILENCE, 0.02)
    heard = await session.next()
    session.close()
    assert heard.speech
    assert heard.armed
    assert not heard.cut
    assert heard.text == "loud 50"
    assert heard.start_s == pytest.approx(0.5)
    assert heard.end_s == pytest.approx(1.5)


async def test_silence_after_the_question_times_out_once(listener: Listener) -> None:
    session = listener.open(ListenConfig(wait_s=2.0))
    feed(session, SILENCE, 5.0)  # while the question is said: no timeout yet
    session.arm()
    feed(session, SILENCE, 2.0)
    heard = await session.next()
    assert not heard.speech
    assert heard.end_s - heard.start_s == pytest.approx(2.0)
    feed(session, LOUD, 0.5)
    feed(session, SILENCE, 1.0)
    assert (await session.next()).speech  # no second timeout in between
    session.close()


async def test_long_speech_is_cut_at_max_length(listener: Listener) -> None:
    session = listener.open(ListenConfig(max_s=3.0))
    session.arm()
    feed(session, LOUD, 5.0)
    heard = await session.next()
    session.close()
    assert heard.cut
    assert heard.end_s - heard.start_s == pytest.approx(3.0)


async def test_speech_before_arm_is_reported_as_early(listener: Listener) -> None:
    session = listener.open(ListenConfig())
    feed(session, LOUD, 0.4)
    feed(session, SILENCE, 1.0)
    heard = await session.next()
    session.close()
    assert heard.speech
    assert not heard.armed


async def test_clicks_shorter_than_speech_are_ignored(listener: Listener) -> None:
    session = listener.open(ListenConfig(wait_s=1.0))
    session.arm()
    for _ in range(10):
        session.feed(LOUD)  # 20 ms clicks, each followed by quiet
        feed(session, SILENCE, 0.06)
    feed(session, SILENCE, 1.0)
    heard = await session.next()
    session.close()
    assert not heard.speech


async def test_without_a_recogniser_speech_is_found_with_no_text() -> None:
    listener = Listener(None, threads=1)
    session = listener.open(ListenConfig())
    session.arm()
    feed(session, LOUD, 0.6)
    feed(session, SILENCE, 1.0)
    heard = await session.next()
    session.close()
    listener.close()
    assert heard.speech
    assert heard.text == ""
