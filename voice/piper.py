"""Piper neural voices, run here without the Piper package.

A Piper voice is an ONNX model and its ``.onnx.json`` config. The ``piper-tts`` package is
GPL-licensed, so Povtor (Apache-2.0) does not import it; it does the same three steps itself:

1. phonemes: espeak-ng, run as a separate program (``--ipa``), one clause at a time, with the
   clause's punctuation put back after it as Piper does (it shapes the intonation) and the
   language-switch marks ("(en)" around a Latin brand name) dropped;
2. ids: each phoneme (a Unicode code point after NFD) through the config's
   ``phoneme_id_map``, with the pad id between phonemes, begin and end ids around the sentence;
3. audio: the model run by onnxruntime (MIT) with the config's ``inference`` scales, one sentence
   at a time, sentences joined with a short pause, then resampled to the call's 8 kHz by sox.

The model loads once per process, lazily, in a thread; inference runs in a thread too (one ONNX
thread per call: prompts are rendered before the call, the worker's cores are for the calls).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from povtor.errors import AudioError, ConfigError
from voice.tts import RATE, CachedSynth, require_programs, resample, run_program

log = logging.getLogger(__name__)

PAD, BOS, EOS = "_", "^", "$"
SENTENCE_PAUSE_S = 0.25
_CLAUSE = re.compile(r"[^.,!?;:…]+[.,!?;:…]*")
_SENTENCE_END = frozenset(".!?…")
_LANGUAGE_SWITCH = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)?\)")  # espeak-ng's "(en)...(ru)"


@dataclass(frozen=True, slots=True)
class VoiceFiles:
    model: Path  # the .onnx file
    config: Path  # its .onnx.json

    @classmethod
    def beside(cls, model: Path) -> VoiceFiles:
        return cls(model, model.with_name(model.name + ".json"))


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    """What Povtor reads of a Piper ``.onnx.json``."""

    sample_rate: int
    espeak_voice: str
    phoneme_id_map: dict[str, list[int]]
    noise_scale: float
    length_scale: float
    noise_w: float
    num_speakers: int

    @classmethod
    def read(cls, path: Path) -> VoiceConfig:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("phoneme_type", "espeak") != "espeak":
                raise ConfigError(f"{path}: phoneme_type {data['phoneme_type']!r} is not espeak")
            inference = data.get("inference", {})
            return cls(
                sample_rate=int(data["audio"]["sample_rate"]),
                espeak_voice=str(data["espeak"]["voice"]),
                phoneme_id_map={k: list(v) for k, v in data["phoneme_id_map"].items()},
                noise_scale=float(inference.get("noise_scale", 0.667)),
                length_scale=float(inference.get("length_scale", 1.0)),
                noise_w=float(inference.get("noise_w", 0.8)),
                num_speakers=int(data.get("num_speakers", 1)),
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"Piper voice config {path} is unusable: {err}") from err


def clauses(text: str) -> list[tuple[str, str]]:
    """(words, punctuation) of each clause: "Здравствуйте! Это робот." -> two clauses."""
    found = []
    for match in _CLAUSE.finditer(" ".join(text.split())):
        chunk = match.group().strip()
        words = chunk.rstrip(".,!?;:…").strip()
        if words:
            found.append((words, chunk[len(words) :].strip()[:1]))
    return found


def phoneme_ids(phonemes: str, id_map: dict[str, list[int]]) -> list[int]:
    """Piper's input ids for one sentence of IPA phonemes (unknown phonemes are skipped)."""
    ids = [*id_map[BOS], *id_map[PAD]]
    for phoneme in unicodedata.normalize("NFD", phonemes):
        mapped = id_map.get(phoneme)
        if mapped is None:
            continue
        ids += [*mapped, *id_map[PAD]]
    ids += id_map[EOS]
    return ids


async def phonemize(text: str, espeak_voice: str) -> list[str]:
    """IPA phonemes of each sentence of ``text``, clause punctuation kept (espeak-ng --ipa)."""
    parts = clauses(text)
    command = ["espeak-ng", "-q", "-v", espeak_voice, "--ipa", "--stdin"]
    said = await asyncio.gather(*(run_program(command, words.encode()) for words, _ in parts))
    sentences: list[str] = []
    current: list[str] = []
    for (_, mark), out in zip(parts, said, strict=True):
        phonemes = " ".join(_LANGUAGE_SWITCH.sub("", out.decode()).split())
        current.append(phonemes + mark)
        if mark in _SENTENCE_END:
            sentences.append(" ".join(current))
            current = []
    if current:
        sentences.append(" ".join(current))
    return [s for s in sentences if s.strip()]


class PiperVoice:
    """One loaded voice (ONNX session + config); thread-safe to run."""

    def __init__(self, files: VoiceFiles, *, threads: int = 1) -> None:
        for path in (files.model, files.config):
            if not path.is_file():
                raise ConfigError(f"Piper voice file {path} is missing")
        self.files = files
        self.config = VoiceConfig.read(files.config)
        self.threads = threads
        self._session: Any = None
        self._lock = threading.Lock()

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                try:
                    self._session = onnxruntime.InferenceSession(
                        str(self.files.model), options, providers=["CPUExecutionProvider"]
                    )
                except Exception as err:  # onnxruntime raises its own exception types
                    model = self.files.model
                    raise ConfigError(f"Piper voice {model} does not load: {err}") from err
            return self._session

    def infer(self, ids: list[int], length_scale: float) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Float audio at the voice's sample rate for one sentence's ids."""
        config = self.config
        inputs: dict[str, Any] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array(
                [config.noise_scale, length_scale, config.noise_w], dtype=np.float32
            ),
        }
        if config.num_speakers > 1:
            inputs["sid"] = np.array([0], dtype=np.int64)
        audio = self.session().run(None, inputs)[0]
        return np.asarray(audio, dtype=np.float32).reshape(-1)


def to_pcm16(audio: np.ndarray[Any, np.dtype[np.float32]]) -> bytes:
    """Float audio to 16-bit PCM, loudness normalised to the peak as Piper does."""
    peak = max(0.01, float(np.max(np.abs(audio))) if audio.size else 0.0)
    scaled = np.clip(audio * (32767.0 * 0.9 / peak), -32768, 32767)
    return bytes(scaled.astype("<i2").tobytes())


class PiperSynth(CachedSynth):
    """``SpeechSynth`` with a Piper voice; ``speed`` 1.0 speaks at the voice's trained pace."""

    engine = "piper-onnx/1"

    def __init__(self, folder: Path, voice: PiperVoice, *, speed: float = 1.0) -> None:
        require_programs("espeak-ng", "sox")
        if speed <= 0:
            raise ConfigError("Piper speed must be above zero")
        super().__init__(folder, voice=voice.files.model.stem, speed=speed)
        self.piper = voice

    async def make(self, text: str) -> bytes:
        config = self.piper.config
        sentences = await phonemize(text, config.espeak_voice)
        if not sentences:
            raise AudioError("nothing to say after phonemisation")
        pause = b"\0\0" * int(config.sample_rate * SENTENCE_PAUSE_S)
        chunks: list[bytes] = []
        length_scale = config.length_scale / self.speed
        for sentence in sentences:
            ids = phoneme_ids(sentence, config.phoneme_id_map)
            audio = await asyncio.to_thread(self.piper.infer, ids, length_scale)
            chunks.append(to_pcm16(audio))
        pcm = pause.join(chunks)
        log.debug("Piper said %d sentences (%d samples)", len(sentences), len(pcm) // 2)
        return await resample(pcm, config.sample_rate)


__all__ = ["RATE", "PiperSynth", "PiperVoice", "VoiceConfig", "VoiceFiles", "phoneme_ids"]
