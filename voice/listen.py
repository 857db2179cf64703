"""Live listening during a call: the client's 20 ms frames in, utterances out.

A :class:`ListenSession` runs in a worker thread (never on the event loop): it measures each
frame's level, feeds a streaming recogniser (Vosk's ``KaldiRecognizer``) and cuts the audio into
utterances: speech that started (a few loud frames in a row) and ended (``end_silence_s`` of
quiet), or ran longer than ``max_s``. After :meth:`ListenSession.arm` (the question was said),
``wait_s`` of audio without speech yields one "nothing said" result. Times are audio time (frames
counted), so a session behaves the same whatever the load of the machine.

Speech is told from quiet frame by frame by a :class:`VoiceDetector`: the frame's level against
``threshold_dbfs`` by default, or Silero VAD (``voice.vad_silero``, ``POVTOR_CALL_VAD=silero``),
which keeps finding answers in noise that the level threshold takes for endless speech.

Without a recogniser (no Vosk model installed) the session still finds where the client spoke;
the texts are then empty and the scenario relies on the keypad.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from povtor.errors import ModelError

log = logging.getLogger(__name__)

FRAME_S = 0.02
RATE = 8000
_ARM = object()


class Recognizer(Protocol):
    """A streaming recogniser of 8 kHz 16-bit mono PCM (Vosk's KaldiRecognizer fits)."""

    def accept(self, pcm: bytes) -> str | None:
        """Feed audio; returns the text of a segment the engine closed on its own, if any."""
        ...

    def final(self) -> str:
        """Text of what was fed since the last segment; the recogniser starts afresh."""
        ...


RecognizerFactory = Callable[[], Recognizer]


class VoiceDetector(Protocol):
    """Says frame by frame whether the client is talking (fed every 20 ms frame in order)."""

    def voiced(self, frame: bytes) -> bool: ...


class EnergyDetector:
    """A frame louder than ``threshold_dbfs`` is speech (cheap; fooled by steady noise)."""

    def __init__(self, threshold_dbfs: float) -> None:
        self.threshold_dbfs = threshold_dbfs

    def voiced(self, frame: bytes) -> bool:
        return level_dbfs(frame) > self.threshold_dbfs


# makes the detector of one session, in the session's worker thread
DetectorFactory = Callable[["ListenConfig"], VoiceDetector]


@dataclass(frozen=True, slots=True)
class ListenConfig:
    wait_s: float = 6.0  # after arm(): this much audio without speech means no answer
    end_silence_s: float = 0.8  # quiet after speech that ends an utterance
    max_s: float = 15.0  # an utterance is cut after this long
    min_speech_s: float = 0.1  # loud frames in a row before it counts as speech
    barge_in_s: float = 0.3  # speech this long sets ``speaking`` (the robot stops talking)
    threshold_dbfs: float = -40.0  # frames louder than this are speech


@dataclass(frozen=True, slots=True)
class Heard:
    """One utterance (``speech``), or the client's silence after the question."""

    speech: bool
    text: str = ""  # what the recogniser understood ("" without one)
    start_s: float = 0.0  # audio time since the session opened
    end_s: float = 0.0
    armed: bool = True  # False: it ended while the question was still being said
    cut: bool = False  # longer than max_s


def level_dbfs(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if not len(samples):
        return -120.0
    rms = math.sqrt(float(np.mean(samples * samples)))
    return 20 * math.log10(rms / 32768) if rms > 0 else -120.0


class ListenSession:
    """One question's listening; feed() and arm() may be called from the event loop."""

    def __init__(
        self,
        config: ListenConfig,
        recognizers: RecognizerFactory | None,
        detectors: DetectorFactory | None = None,
    ) -> None:
        self.config = config
        self._recognizers = recognizers
        self._detectors = detectors
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._loop = asyncio.get_running_loop()
        self._results: asyncio.Queue[Heard | BaseException] = asyncio.Queue()
        self.speaking = asyncio.Event()  # the client has been talking for barge_in_s
        self.frames = 0

    def feed(self, frame: bytes) -> None:
        self._queue.put(frame)

    def arm(self) -> None:
        """The question has been said: from now on silence counts as no answer."""
        self._queue.put(_ARM)

    def close(self) -> None:
        self._queue.put(None)

    async def next(self) -> Heard:
        """The next utterance, or the silence after arm(); raises what the worker raised."""
        item = await self._results.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _emit(self, item: Heard | BaseException) -> None:
        try:
            self._loop.call_soon_threadsafe(self._results.put_nowait, item)
        except RuntimeError:  # the loop is gone (shutdown): nobody waits for this any more
            self._queue.put(None)

    def _signal_speaking(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self.speaking.set)
        except RuntimeError:  # the loop is gone (shutdown)
            self._queue.put(None)

    def run(self) -> None:
        """The worker loop (in a thread of the Listener's pool)."""
        try:
            self._run()
        except Exception as err:
            log.exception("Live recognition failed")
            self._emit(err)

    def _run(self) -> None:
        cfg = self.config
        recognizer = self._recognizers() if self._recognizers is not None else None
        detector = (
            self._detectors(cfg)
            if self._detectors is not None
            else EnergyDetector(cfg.threshold_dbfs)
        )
        min_loud = max(1, round(cfg.min_speech_s / FRAME_S))
        barge_in = max(1, round(cfg.barge_in_s / FRAME_S))
        armed_at: int | None = None
        waited = False  # the silence after arm() was reported
        start: int | None = None  # frame index where the current speech began
        last_loud = 0
        loud_run = 0
        parts: list[str] = []
        while True:
            item = self._queue.get()
            if item is None:
                return
            if item is _ARM:
                armed_at = self.frames
                continue
            assert isinstance(item, bytes)
            self.frames += 1
            now = self.frames
            if detector.voiced(item):
                loud_run += 1
                last_loud = now
                if start is None and loud_run >= min_loud:
                    start = now - loud_run
                if loud_run == barge_in:
                    self._signal_speaking()
            else:
                loud_run = 0
            if recognizer is not None:
                segment = recognizer.accept(item)
                if segment:
                    parts.append(segment)
            if start is None:
                parts.clear()  # noise the engine took for words, with no speech around it
                if (
                    armed_at is not None
                    and not waited
                    and (now - armed_at) * FRAME_S >= cfg.wait_s
                ):
                    waited = True
                    self._emit(Heard(False, start_s=armed_at * FRAME_S, end_s=now * FRAME_S))
                continue
            ended = (now - last_loud) * FRAME_S >= cfg.end_silence_s
            cut = (now - start) * FRAME_S >= cfg.max_s
            if ended or cut:
                if recognizer is not None:
                    parts.append(recognizer.final())
                text = " ".join(" ".join(parts).split())
                self._emit(
                    Heard(
                        True,
                        text,
                        start_s=start * FRAME_S,
                        end_s=(now if cut else last_loud) * FRAME_S,
                        armed=armed_at is not None,
                        cut=cut and not ended,
                    )
                )
                parts.clear()
                start, loud_run = None, 0
                waited = waited or armed_at is not None


class Listener:
    """Opens listening sessions on a pool of threads (one busy thread per open session)."""

    def __init__(
        self,
        recognizers: RecognizerFactory | None,
        *,
        threads: int = 8,
        detectors: DetectorFactory | None = None,
    ) -> None:
        self.recognizers = recognizers
        self.detectors = detectors  # None: the energy detector (ListenConfig.threshold_dbfs)
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="listen")

    @property
    def recognises(self) -> bool:
        return self.recognizers is not None

    def open(self, config: ListenConfig) -> ListenSession:
        session = ListenSession(config, self.recognizers, self.detectors)
        self._pool.submit(session.run)
        return session

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class VoskRecognizers:
    """Makes Vosk recognisers over one model, loaded once (lazily, in the caller's thread)."""

    def __init__(self, model_path: Path, *, grammar: list[str] | None = None) -> None:
        self.model_path = model_path
        self.grammar = grammar
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    import vosk

                    vosk.SetLogLevel(-1)
                    self._model = vosk.Model(str(self.model_path))
                except Exception as err:
                    raise ModelError(f"cannot load Vosk model {self.model_path}: {err}") from err
            return self._model

    def __call__(self) -> Recognizer:
        import vosk

        model = self.load()
        if self.grammar is not None:
            kaldi = vosk.KaldiRecognizer(model, RATE, json.dumps(self.grammar, ensure_ascii=False))
        else:
            kaldi = vosk.KaldiRecognizer(model, RATE)
        return _VoskRecognizer(kaldi)


class _VoskRecognizer:
    def __init__(self, kaldi: Any) -> None:
        self._kaldi = kaldi

    def accept(self, pcm: bytes) -> str | None:
        if self._kaldi.AcceptWaveform(pcm):
            return str(json.loads(self._kaldi.Result()).get("text", "")) or None
        return None

    def final(self) -> str:
        return str(json.loads(self._kaldi.FinalResult()).get("text", ""))
