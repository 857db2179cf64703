"""Decoding one loaded file with a Vosk model: speech regions in, a dialogue of segments out.

Runs inside a pool process (blocking, CPU-bound). Each channel gets one recogniser; only its
speech regions are fed, each region closed with ``FinalResult`` so no phrase spans two regions,
and word times are mapped back from fed audio to the file's own timeline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from povtor.ports import Segment, Transcript, Word
from povtor.settings import AsrSettings
from voice.audio import MAX_DURATION_S, Channel, LoadedAudio
from voice.vad import Region, VadConfig, speech_regions

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


def decode_channel(
    model: Any, channel: Channel, rate: int, regions: list[Region] | None
) -> list[Segment]:
    """Segments of one channel; ``regions=None`` decodes the whole channel."""
    from vosk import KaldiRecognizer

    samples = channel.samples
    if regions is None:
        regions = [Region(0, len(samples))] if len(samples) else []
    recogniser = KaldiRecognizer(model, float(rate))
    recogniser.SetWords(True)
    segments: list[Segment] = []
    fed = 0  # samples fed so far: the recogniser's own clock
    limit = round(len(samples) / rate, 3)  # frame rounding may put a last word past the end
    for region in regions:
        shift = (region.start - fed) / rate
        for start in range(region.start, region.end, CHUNK):
            chunk = samples[start : min(start + CHUNK, region.end)]
            if recogniser.AcceptWaveform(chunk.tobytes()):
                _collect(recogniser.Result(), shift, limit, channel.speaker, segments)
        _collect(recogniser.FinalResult(), shift, limit, channel.speaker, segments)
        fed += region.end - region.start
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


def decode_audio(model: Any, audio: LoadedAudio, file: str, options: DecodeOptions) -> Transcript:
    segments: list[Segment] = []
    for channel in audio.channels:
        regions = find_speech(channel, audio.rate, options) if options.vad else None
        segments.extend(decode_channel(model, channel, audio.rate, regions))
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
