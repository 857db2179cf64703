"""Answering-machine detection from what the far end sends after it answers.

Pure and streaming: 20 ms frames of 8 kHz 16-bit PCM in, a verdict out as soon as one is safe.
Decisions, in order of what a call can afford to get wrong (hanging up on a person is the worst
mistake, so the detector says "machine" only on strong evidence and "unsure" otherwise, and an
unsure call goes on as a conversation):

- A beep (one steady tone, 300-2500 Hz, at least ``beep_ms``) is a machine: people do not whistle
  sine waves; the voicemail's greeting ends with it.
- A long uninterrupted greeting is a machine: a person answers "Алло?" or "Да, слушаю" (under two
  seconds) and then waits for the caller; a recorded greeting goes on. Speech counts as one run
  across pauses shorter than ``bridge_ms`` (breaths between phrases); ``machine_speech_s`` of it
  in one run decides. The robot's own disclosure plays meanwhile: a person stops talking to
  listen to it, a tape does not.
- A greeting that goes on through short pauses (``machine_total_s`` of speech with no quiet of
  ``human_silence_s``) is a machine for the same reason: a person stops to hear who calls.
- A short greeting followed by ``human_silence_s`` of quiet is a person.
- Anything else after ``max_s`` (silence, noise, several short phrases) is unsure.

Speech is a frame ``margin_db`` above the noise floor (the quietest tenth of the frames seen so
far) and above ``floor_dbfs``, so line noise does not count as speech.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

RATE = 8000
FRAME = 160  # 20 ms


class Verdict(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    UNSURE = "unsure"


@dataclass(frozen=True, slots=True)
class AmdConfig:
    machine_speech_s: float = 3.5  # one run of speech this long: a recorded greeting
    machine_total_s: float = 3.5  # this much speech with no quiet of human_silence_s between
    human_speech_s: float = 2.0  # a greeting up to this long, then quiet: a person
    human_silence_s: float = 1.0
    bridge_ms: int = 400  # pauses shorter than this stay inside one run of speech
    beep_ms: int = 160
    beep_purity: float = 0.8  # share of a frame's energy within 100 Hz of its peak
    margin_db: float = 6.0
    floor_dbfs: float = -45.0
    max_s: float = 8.0  # no decision by then: unsure


@dataclass
class Detection:
    verdict: Verdict
    at_s: float  # seconds of the far end's audio when decided
    reason: str


@dataclass
class Detector:
    """Feed it the far end's frames from the answer on; ``feed`` returns the first verdict."""

    config: AmdConfig = field(default_factory=AmdConfig)
    frames: int = 0
    result: Detection | None = None
    _levels: list[float] = field(default_factory=list)
    _run_start: int | None = None  # frame where the current run of speech began
    _last_speech: int = -1
    _longest_run: int = 0
    _beep: int = 0
    _runs: int = 0
    _talking: int = 0
    _floor: float = -120.0  # frames of speech since the far end last went quiet for a while
    _window: np.ndarray = field(default_factory=lambda: np.hanning(FRAME))

    def greeting_over(self, frame: bytes) -> bool:
        """After a machine verdict: has the greeting ended (its beep, or quiet)? Then a message
        said now is what the voicemail records."""
        heard = self._hear(frame)
        if heard is None:
            return False
        speech, tonal = heard
        if tonal:
            self._beep += 1
        elif self._beep * 20 >= self.config.beep_ms:
            return True  # the beep just ended
        else:
            self._beep = 0
        if speech:
            self._last_speech = self.frames
        quiet = (self.frames - max(self._last_speech, 0)) * 0.02
        return quiet >= self.config.human_silence_s

    def _hear(self, frame: bytes) -> tuple[bool, bool] | None:
        """(speech, a steady tone) for one frame; None for an empty one."""
        samples = np.frombuffer(frame[: len(frame) // 2 * 2], dtype="<i2").astype(np.float64)
        if samples.size == 0:
            return None
        self.frames += 1
        config = self.config
        level = 10 * np.log10(np.mean(samples**2) / 32768.0**2 + 1e-12)
        self._levels.append(level)
        if self.frames < 10 or self.frames % 10 == 0:  # the floor moves slowly: 5 times a second
            self._floor = float(np.percentile(self._levels[-500:], 10))
        speech = bool(level > max(config.floor_dbfs, self._floor + config.margin_db))
        return speech, speech and self._tonal(samples)

    def feed(self, frame: bytes) -> Detection | None:
        if self.result is not None:
            return self.result
        heard = self._hear(frame)
        if heard is None:
            return None
        speech, tonal = heard
        config = self.config
        self._beep = self._beep + 1 if tonal else 0
        if self._beep * 20 >= config.beep_ms:
            return self._decide(Verdict.MACHINE, "beep")
        bridge = config.bridge_ms // 20
        if speech:
            if self._run_start is None or self.frames - self._last_speech > bridge:
                self._run_start = self.frames
                self._runs += 1
            if self._last_speech >= 0 and (
                (self.frames - self._last_speech) * 0.02 >= config.human_silence_s
            ):
                self._talking = 0  # it stopped to listen: what follows is a new turn
            self._last_speech = self.frames
            self._talking += 1
            if self._talking * 0.02 >= config.machine_total_s:
                return self._decide(Verdict.MACHINE, "talking on without stopping to listen")
            run = self.frames - self._run_start + 1
            self._longest_run = max(self._longest_run, run)
            if run * 0.02 >= config.machine_speech_s:
                return self._decide(
                    Verdict.MACHINE, f"{run * 0.02:.1f} s of speech without a pause"
                )
        elif self._last_speech >= 0:
            quiet = (self.frames - self._last_speech) * 0.02
            short = self._longest_run * 0.02 <= config.human_speech_s
            if quiet >= config.human_silence_s and short and self._runs <= 2:
                return self._decide(Verdict.HUMAN, "a short greeting, then quiet")
        if self.frames * 0.02 >= config.max_s:
            return self._decide(Verdict.UNSURE, "no clear sign")
        return None

    def _tonal(self, samples: np.ndarray) -> bool:
        if samples.size < FRAME:
            return False
        power = np.abs(np.fft.rfft(samples[:FRAME] * self._window)) ** 2
        peak = int(np.argmax(power))
        hz = peak * RATE / FRAME
        if not 300 <= hz <= 2500:
            return False
        near = power[max(0, peak - 2) : peak + 3].sum()
        return bool(near / (power.sum() + 1e-12) >= self.config.beep_purity)

    def _decide(self, verdict: Verdict, reason: str) -> Detection:
        self.result = Detection(verdict, round(self.frames * 0.02, 2), reason)
        return self.result


def detect(pcm: bytes, config: AmdConfig | None = None) -> Detection:
    """The verdict over a whole recording (what the far end said from the answer on)."""
    detector = Detector(config or AmdConfig())
    for start in range(0, len(pcm) - 2 * FRAME + 1, 2 * FRAME):
        found = detector.feed(pcm[start : start + 2 * FRAME])
        if found is not None:
            return found
    return Detection(Verdict.UNSURE, round(detector.frames * 0.02, 2), "ended undecided")
