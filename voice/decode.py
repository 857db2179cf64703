"""Decoding one loaded file with a Vosk model: speech regions in, a dialogue of segments out.

Runs inside a pool process (blocking, CPU-bound). Only a channel's speech regions are fed, each
region closed with ``FinalResult`` so no phrase spans two regions, and word times are mapped back
from fed audio to the file's own timeline.

A pool process keeps one :class:`Recogniser` for its whole life and feeds it every region of
every file. Vosk models with a lookahead graph (``HCLr.fst`` + ``Gr.fst``, the small models)
compose the decoding graph on the fly, and the composed states are cached in the recogniser, not
the model: a new recogniser per file or channel starts cold and spends about two thirds of its
time composing (profiled with py-spy --native), a long-lived one about half as much CPU per file
once warm. ``FinalResult`` starts a new decoder and feature pipeline in the same recogniser, so
each region is decoded from the same state as by a new recogniser; only the recogniser's clock
runs on, which :attr:`Recogniser.fed` tracks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from povtor.ports import Segment, Transcript, Word
from povtor.settings import AsrSettings
from voice.audio import MAX_DURATION_S, Channel, LoadedAudio
from voice.vad import Region, Samples, VadConfig, speech_regions

CHUNK = 4000  # samples fed per AcceptWaveform call (0.5 s at 8 kHz)


Detector = Literal["energy", "silero"]


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    vad: bool = True
    detector: Detector = "silero"  # which VAD finds the speech regions (POVTOR_ASR_VAD)
    silero_threshold: float = 0.5
    skip_robot: bool = False
    vad_config: VadConfig = field(default_factory=VadConfig)
    max_duration_s: float = MAX_DURATION_S  # longer files are refused (POVTOR_ASR_MAX_AUDIO_S)


def options_from_settings(
    asr: AsrSettings,
    *,
    vad: bool = True,
    detector: Detector | None = None,
    skip_robot: bool | None = None,
) -> DecodeOptions:
    """The decoding the settings (POVTOR_ASR_*) ask for; a command's flags override them."""
    return DecodeOptions(
        vad=vad,
        detector=detector or asr.vad,
        silero_threshold=asr.vad_threshold,
        skip_robot=asr.skip_robot if skip_robot is None else skip_robot,
        max_duration_s=asr.max_audio_s,
    )


class Recogniser:
    """A Vosk recogniser at one sample rate, reused region after region (see the module doc).

    Not thread-safe: one per process (or thread). After an error inside a region its state is
    unknown, so it refuses further use (``broken``) and its owner makes a new one.
    """

    def __init__(self, model: Any, rate: int) -> None:
        from vosk import KaldiRecognizer

        self.rate = rate
        self._kaldi = KaldiRecognizer(model, float(rate))
        self._kaldi.SetWords(True)
        self.fed = 0  # samples fed since it was made: the clock of the times it reports
        self.broken = False

    def decode(self, samples: Samples, region: Region, speaker: str, into: list[Segment]) -> None:
        """Feed one region and close it; its words, on the channel's timeline, go ``into``."""
        if self.broken:
            raise RuntimeError("a recogniser that failed mid-region is not reused")
        self.broken = True
        kaldi = self._kaldi
        shift = (region.start - self.fed) / self.rate
        limit = round(len(samples) / self.rate, 3)  # frame rounding may put a word past the end
        for start in range(region.start, region.end, CHUNK):
            chunk = samples[start : min(start + CHUNK, region.end)]
            if kaldi.AcceptWaveform(chunk.tobytes()):
                _collect(kaldi.Result(), shift, limit, speaker, into)
        _collect(kaldi.FinalResult(), shift, limit, speaker, into)
        self.fed += region.end - region.start
        self.broken = False


WARM_UP_S = 0.5  # of faint noise: what it takes to set a recogniser up (see warm_recogniser)
WARM_UP_NOISE = 40.0  # standard deviation in 16-bit samples: about -58 dBFS, a quiet line


def warm_recogniser(model: Any, rate: int) -> Recogniser:
    """A recogniser that has decoded half a second of faint noise (it hears no word in it).

    A new recogniser's first region costs about half a second of CPU however short it is (the
    lookahead composition sets itself up); that and the states any audio reaches (silence, the
    start of the graph) are then done. Made once in the forkserver, every pool process forked
    from it starts with it, instead of paying for it in its first file. The noise is the same
    every time (a fixed seed), and so is what the recogniser does with it.
    """
    noise = np.random.default_rng(0).normal(0.0, WARM_UP_NOISE, round(WARM_UP_S * rate))
    samples = noise.round().astype(np.int16)
    recogniser = Recogniser(model, rate)
    recogniser.decode(samples, Region(0, len(samples)), "noise", [])
    return recogniser


def decode_channel(
    model: Any,
    channel: Channel,
    rate: int,
    regions: list[Region] | None,
    recogniser: Recogniser | None = None,
) -> list[Segment]:
    """Segments of one channel; ``regions=None`` decodes the whole channel. Without a
    ``recogniser`` a new (cold) one is made for this channel."""
    samples = channel.samples
    if regions is None:
        regions = [Region(0, len(samples))] if len(samples) else []
    if recogniser is None:
        recogniser = Recogniser(model, rate)
    segments: list[Segment] = []
    for region in regions:
        recogniser.decode(samples, region, channel.speaker, segments)
    return segments


def _collect(raw: str, shift: float, limit: float, speaker: str, into: list[Segment]) -> None:
    result = json.loads(raw)
    words = tuple(
        Word(
            word=str(w["word"]),
            start=min(round(float(w["start"]) + shift, 3), limit),
            end=min(round(float(w["end"]) + shift, 3), limit),
            conf=round(float(w.get("conf", 1.0)), 4),
        )
        for w in result.get("result", ())
    )
    if not words:
        return
    text = str(result.get("text") or " ".join(w.word for w in words))
    into.append(
        Segment(start=words[0].start, end=words[-1].end, speaker=speaker, text=text, words=words)
    )


def decode_audio(
    model: Any,
    audio: LoadedAudio,
    file: str,
    options: DecodeOptions,
    recogniser: Recogniser | None = None,
) -> Transcript:
    """The dialogue of a loaded file; ``recogniser`` (at the audio's rate) is reused if given."""
    segments: list[Segment] = []
    for channel in audio.channels:
        regions = find_speech(channel, audio.rate, options) if options.vad else None
        segments.extend(decode_channel(model, channel, audio.rate, regions, recogniser))
    segments.sort(key=lambda s: (s.start, s.speaker))
    return Transcript(file=file, duration_s=audio.duration_s, segments=tuple(segments))


def find_speech(channel: Channel, rate: int, options: DecodeOptions) -> list[Region]:
    """The channel's speech regions by the detector the options name."""
    if options.detector == "silero":
        from voice.vad_silero import silero_regions

        return silero_regions(
            channel.samples, rate, options.vad_config, threshold=options.silero_threshold
        )
    return speech_regions(channel.samples, rate, options.vad_config)
