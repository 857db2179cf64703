"""A synthetic set for measuring answering-machine detection: people answering and voicemails.

People: "Алло?", "Да, слушаю"... (said once or twice), then quiet while they listen to the robot.
Machines: greetings of 5-20 seconds, with and without the closing beep. Each in several espeak-ng
voices (pitch and pace vary) and at several line-noise levels. Made with espeak-ng and sox as
separate programs; 8 kHz 16-bit mono PCM, starting at the answer.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import numpy as np

from voice.tts import run_program

RATE = 8000
HUMAN = (
    "Алло?",
    "Да, слушаю.",
    "Алло, слушаю вас.",
    "Да?",
    "Алло, кто это?",
    "Слушаю.",
    "Добрый день, слушаю вас.",
    "Алло, здравствуйте, а кто это звонит?",
    "Да, я вас слушаю, говорите, пожалуйста.",
)
MACHINE = (
    "Здравствуйте, вы позвонили Ивану. Я не могу сейчас ответить, оставьте сообщение после "
    "сигнала, и я перезвоню вам, как только смогу.",
    "Абонент не может ответить на ваш звонок. Оставьте, пожалуйста, голосовое сообщение после "
    "звукового сигнала. Для завершения записи положите трубку.",
    "Привет! Это Марина. Сейчас я занята и не могу взять трубку. Говорите после гудка.",
    "Здравствуйте! Вы позвонили в компанию Ромашка. Все операторы заняты. Оставьте ваше "
    "сообщение и номер телефона, мы обязательно перезвоним в рабочее время. Спасибо за звонок.",
)
VOICES = ("ru", "ru+m3", "ru+f2", "ru+f4")
SPEEDS = (150, 175)
NOISE_DBFS = (-70.0, -45.0, -35.0)  # clean line, ordinary, bad


@dataclass(frozen=True, slots=True)
class Clip:
    name: str
    machine: bool
    pcm: bytes


async def _speech(text: str, voice: str, speed: int) -> np.ndarray:
    wav = await run_program(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdin", "--stdout"], text.encode()
    )
    raw = await run_program(
        ["sox", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16",
         "-c", "1", "-L", "-"],
        wav,
    )  # fmt: skip
    return np.frombuffer(raw, dtype="<i2").astype(np.float64)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds))


def _beep(seconds: float = 0.5, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return 12000 * np.sin(2 * np.pi * hz * t)


def _mix(signal: np.ndarray, noise_dbfs: float, rng: np.random.Generator) -> bytes:
    noise = rng.normal(0, 32768 * 10 ** (noise_dbfs / 20), signal.size)
    return np.clip(signal + noise, -32768, 32767).astype("<i2").tobytes()


async def build(limit_voices: int = len(VOICES), seed: int = 7) -> list[Clip]:
    rng = np.random.default_rng(seed)
    clips: list[Clip] = []
    voices = VOICES[:limit_voices]
    for text, voice, speed in itertools.product(HUMAN, voices, SPEEDS):
        said = await _speech(text, voice, speed)
        twice = text in ("Алло?", "Да?")  # "Алло? ... Алло?" when nobody seems to be there
        body = [_silence(rng.uniform(0.2, 0.8)), said]
        if twice:
            body += [_silence(rng.uniform(0.8, 1.2)), said]
        body.append(_silence(6.0))
        signal = np.concatenate(body)
        for noise in NOISE_DBFS:
            name = f"human:{text}:{voice}:{speed}:{noise:.0f}"
            clips.append(Clip(name, False, _mix(signal, noise, rng)))
    for (index, text), voice, speed in itertools.product(enumerate(MACHINE), voices, SPEEDS):
        said = await _speech(text, voice, speed)
        for beep, noise in itertools.product((True, False), NOISE_DBFS):
            body = [_silence(rng.uniform(0.1, 0.6)), said]
            if beep:
                body += [_silence(0.3), _beep(rng.uniform(0.3, 0.8))]
            body.append(_silence(3.0))
            name = f"machine:{index}:{voice}:{speed}:{'beep' if beep else 'quiet'}:{noise:.0f}"
            clips.append(Clip(name, True, _mix(np.concatenate(body), noise, rng)))
    return clips


def build_sync(limit_voices: int = len(VOICES)) -> list[Clip]:
    return asyncio.run(build(limit_voices))
