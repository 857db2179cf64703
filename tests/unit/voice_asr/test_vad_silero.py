"""Speech regions of a recording by Silero VAD (POVTOR_ASR_VAD=silero) against the energy
VAD: two Russian answers (espeak-ng) with a long pause between them, in steady line noise."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from povtor.settings import Settings
from voice.audio import Channel
from voice.decode import DecodeOptions, find_speech, options_from_settings
from voice.vad import VadConfig, regions_from_mask, speech_fraction, speech_regions
from voice.vad_silero import silero_regions

RATE = 8000
PAUSE_S = 4.0
Recording = tuple[np.ndarray, list[tuple[int, int]]]


def _say(folder: Path, text: str) -> np.ndarray:
    raw, wav8 = folder / "raw.wav", folder / "say.wav"
    subprocess.run(["espeak-ng", "-v", "ru", "-w", str(raw), text], check=True)
    sox = ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(wav8)]
    subprocess.run(sox, check=True)
    with wave.open(str(wav8), "rb") as wav:
        speech = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)
    loud = np.flatnonzero(np.abs(speech) > 300)
    speech = speech[loud[0] : loud[-1] + 1]
    return np.asarray(speech * 32768 * 10 ** (-22 / 20) / np.sqrt(np.mean(speech**2)))


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """1 s of line, an answer, 4 s of line, another answer, 1 s of line; noise 10 dB below
    the voice over all of it; and the two answers' sample spans."""
    folder = tmp_path_factory.mktemp("silero_asr")
    first = _say(folder, "Да, всё понравилось, спасибо.")
    second = _say(folder, "Ставлю девять, доставка была быстрая.")
    gap = np.zeros(int(PAUSE_S * RATE))
    edge = np.zeros(RATE)
    clean = np.concatenate([edge, first, gap, second, edge])
    a = len(edge)
    b = a + len(first) + len(gap)
    spans = [(a, a + len(first)), (b, b + len(second))]
    rng = np.random.default_rng(3)
    noise = rng.normal(size=len(clean))
    noise *= np.sqrt(np.mean(first**2)) * 10 ** (-10 / 20) / np.sqrt(np.mean(noise**2))
    return np.clip(clean + noise, -32768, 32767).astype(np.int16), spans


def test_silero_keeps_every_answer_and_leaves_out_the_noisy_pause(
    recording: Recording,
) -> None:
    samples, spans = recording
    regions = silero_regions(samples, RATE)
    for start, end in spans:  # each answer whole inside one region
        assert any(r.start <= start and end <= r.end for r in regions), (start, end, regions)
    pause = (spans[0][1] + RATE, spans[1][0] - RATE)  # the pause, less a second each side
    assert not any(r.start < pause[1] and pause[0] < r.end for r in regions), regions
    assert speech_fraction(regions, len(samples)) < 0.8


def test_in_that_noise_the_energy_vad_keeps_the_pause(
    recording: Recording,
) -> None:
    """Why Silero is offered for recordings: the energy VAD's floor sits in the noise."""
    samples, _ = recording
    assert speech_fraction(speech_regions(samples, RATE), len(samples)) > 0.95


def test_silence_has_no_speech_for_silero() -> None:
    assert silero_regions(np.zeros(RATE * 3, np.int16), RATE) == []
    assert silero_regions(np.zeros(0, np.int16), RATE) == []


def test_regions_from_a_mask_bridge_pad_and_drop_clicks() -> None:
    config = VadConfig(pad_ms=64, bridge_ms=320, min_speech_ms=96)
    window = 256  # 32 ms at 8 kHz
    mask = np.zeros(100, dtype=np.bool_)
    mask[10:20] = True  # speech
    mask[25:30] = True  # 5 windows later: bridged into the first region
    mask[60:62] = True  # 64 ms: a click, dropped
    mask[80:90] = True
    regions = regions_from_mask(mask, window, RATE, 100 * window, config)
    pad = RATE * 64 // 1000
    assert [(r.start, r.end) for r in regions] == [
        (10 * window - pad, 30 * window + pad),
        (80 * window - pad, 90 * window + pad),
    ]


def test_the_settings_choose_the_detector(
    monkeypatch: pytest.MonkeyPatch, recording: Recording
) -> None:
    samples, _ = recording
    channel = Channel(speaker="client", samples=samples)
    assert options_from_settings(Settings().asr).detector == "silero"  # the default
    assert find_speech(channel, RATE, DecodeOptions()) == silero_regions(samples, RATE)
    monkeypatch.setenv("POVTOR_ASR_VAD", "energy")
    options = options_from_settings(Settings().asr)
    assert options.detector == "energy"
    assert find_speech(channel, RATE, options) == speech_regions(samples, RATE)
    assert options_from_settings(Settings().asr, detector="silero").detector == "silero"
