"""espeak-ng synthesis: 8 kHz PCM of a plausible length, cached on disk and in memory."""

from __future__ import annotations

import wave
from pathlib import Path

from voice.tts import EspeakSynth

SENTENCE = "Порекомендуете ли вы нас друзьям и знакомым по шкале от нуля до десяти?"


async def test_russian_sentence_becomes_8khz_pcm_and_is_cached(tmp_path: Path) -> None:
    synth = EspeakSynth(tmp_path / "prompts")
    pcm = await synth.synth(SENTENCE)
    seconds = len(pcm) / 16000
    assert 2.5 < seconds < 8.0, seconds  # ~12 words at 150 words per minute
    assert len(pcm) % 2 == 0
    with wave.open(str(synth.path_for(SENTENCE)), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.readframes(wav.getnframes()) == pcm
    assert synth.synthesised == 1

    again = EspeakSynth(tmp_path / "prompts")  # a new process: only the disk cache is left
    assert await again.synth(SENTENCE) == pcm
    assert again.synthesised == 0
    assert await synth.synth("  ".join(SENTENCE.split())) == pcm  # same words, same prompt
    assert synth.synthesised == 1


async def test_another_voice_speed_is_another_prompt(tmp_path: Path) -> None:
    slow, fast = EspeakSynth(tmp_path, speed=120), EspeakSynth(tmp_path, speed=220)
    assert slow.path_for(SENTENCE) != fast.path_for(SENTENCE)
    assert len(await slow.synth(SENTENCE)) > 1.3 * len(await fast.synth(SENTENCE))
