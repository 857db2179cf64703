"""Live listening with Silero VAD (POVTOR_CALL_VAD=silero) against the energy threshold: a
Russian answer (espeak-ng) in steady line noise 10 dB below it."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from povtor.settings import CallSettings, Settings
from voice.call_channel import build_listener
from voice.listen import ListenConfig, Listener, ListenSession
from voice.vad_silero import SileroDetectors

LEAD_S, TAIL_S = 1.0, 2.0


@pytest.fixture(scope="module")
def noisy_answer(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, float, float]:
    """8 kHz PCM: noise, "Да, всё понравилось, спасибо.", noise; and where the words are."""
    folder = tmp_path_factory.mktemp("silero")
    raw, wav8 = folder / "raw.wav", folder / "answer.wav"
    subprocess.run(["espeak-ng", "-v", "ru", "-w", str(raw), "Да, всё понравилось, спасибо."],
                   check=True)  # fmt: skip
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav8)], check=True)
    with wave.open(str(wav8), "rb") as wav:
        speech = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)
    speech *= 32768 * 10 ** (-22 / 20) / np.sqrt(np.mean(speech**2))
    voiced = np.flatnonzero(np.abs(speech) > 300)
    lead, tail = np.zeros(int(LEAD_S * 8000)), np.zeros(int(TAIL_S * 8000))
    signal = np.concatenate([lead, speech, tail])
    rng = np.random.default_rng(7)
    noise = np.cumsum(rng.normal(size=len(signal)))  # brown: most of its power down low
    noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    noise *= np.sqrt(np.mean(speech**2)) * 10 ** (-10 / 20) / np.sqrt(np.mean(noise**2))
    pcm = np.clip(signal + noise, -32768, 32767).astype("<i2")
    pcm = pcm[: len(pcm) // 160 * 160]
    return pcm.tobytes(), LEAD_S + voiced[0] / 8000, LEAD_S + voiced[-1] / 8000


def feed_all(session: ListenSession, pcm: bytes) -> None:
    for i in range(0, len(pcm), 320):
        session.feed(pcm[i : i + 320])


async def hear(listener: Listener, pcm: bytes) -> tuple[bool, float, float, bool]:
    session = listener.open(ListenConfig(max_s=3.0))
    session.arm()
    feed_all(session, pcm)
    heard = await session.next()
    session.close()
    return heard.speech, heard.start_s, heard.end_s, heard.cut


async def test_silero_finds_the_answer_in_noise_that_the_energy_threshold_takes_for_speech(
    noisy_answer: tuple[bytes, float, float],
) -> None:
    pcm, start, end = noisy_answer
    silero = Listener(None, threads=1, detectors=SileroDetectors())
    energy = Listener(None, threads=1)
    try:
        speech, found_start, found_end, cut = await hear(silero, pcm)
        assert speech
        assert not cut
        assert found_start == pytest.approx(start, abs=0.3)
        assert found_end == pytest.approx(end, abs=0.3)
        # the threshold hears the noise as talk from the first frame and never an end
        speech, found_start, _end, cut = await hear(energy, pcm)
        assert speech
        assert found_start < 0.2
        assert cut
    finally:
        silero.close()
        energy.close()


def test_the_setting_chooses_the_detector(tmp_path: Path) -> None:
    chosen = build_listener(
        Settings(data_dir=tmp_path, call=CallSettings(live_asr=False, vad="silero"))
    )
    default = build_listener(Settings(data_dir=tmp_path, call=CallSettings(live_asr=False)))
    try:
        assert isinstance(chosen.detectors, SileroDetectors)
        assert default.detectors is None
    finally:
        chosen.close()
        default.close()
