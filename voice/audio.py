"""Loading audio of any format ffmpeg reads (through pydub) as 8 kHz 16-bit channels.

A stereo file is a call recording: left is the robot, right is the client. Anything else is
mixed down to one "mono" channel (a voice message, a dictation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from povtor.errors import AudioError
from voice.vad import Samples

log = logging.getLogger(__name__)

RATE = 8000  # the models accept 8 kHz directly and decode it faster than 16 kHz
ROBOT = "robot"
CLIENT = "client"
MONO = "mono"


@dataclass(frozen=True, slots=True)
class Channel:
    speaker: str
    samples: Samples


@dataclass(frozen=True, slots=True)
class LoadedAudio:
    rate: int
    duration_s: float
    stereo: bool
    channels: tuple[Channel, ...]


def load_audio(path: Path, *, rate: int = RATE, skip_robot: bool = False) -> LoadedAudio:
    """Decode ``path``; raises :class:`AudioError` saying why a file cannot be used."""
    from pydub import AudioSegment  # imported here: pulls in audioop and probes ffmpeg
    from pydub.exceptions import CouldntDecodeError

    try:
        size = path.stat().st_size
    except OSError as err:
        raise AudioError(f"cannot read file: {err.strerror or err}") from err
    if size == 0:
        raise AudioError("empty file")
    try:
        if path.suffix.lower() == ".wav":
            # given a path, pydub leaves a WAV's file handle open: hand it one that is closed here
            with path.open("rb") as fh:
                segment = AudioSegment.from_file(fh, format="wav")
        else:
            segment = AudioSegment.from_file(str(path))
    except CouldntDecodeError as err:
        raise AudioError(f"not decodable audio: {_ffmpeg_reason(err)}") from err
    except (OSError, IndexError, ValueError, EOFError) as err:
        raise AudioError(f"not decodable audio: {err}") from err
    if len(segment.raw_data) == 0 or segment.frame_count() == 0:
        raise AudioError("no audio in file")
    segment = segment.set_sample_width(2).set_frame_rate(rate)
    if segment.channels == 2:
        left, right = segment.split_to_mono()
        channels = [Channel(CLIENT, _samples(right))]
        if not skip_robot:
            channels.insert(0, Channel(ROBOT, _samples(left)))
        stereo = True
    else:
        channels = [Channel(MONO, _samples(segment.set_channels(1)))]
        stereo = False
    duration = segment.frame_count() / rate
    return LoadedAudio(
        rate=rate, duration_s=round(duration, 3), stereo=stereo, channels=tuple(channels)
    )


def _samples(segment: object) -> Samples:
    raw: bytes = segment.raw_data  # type: ignore[attr-defined]
    return np.frombuffer(raw, dtype=np.int16)


def _ffmpeg_reason(err: Exception) -> str:
    """The line of ffmpeg's output that says what is wrong (its last one), else the first."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    last = lines[-1]
    if len(lines) > 1 and not last.startswith(("lib", "configuration:", "built with")):
        _, _, detail = last.rpartition(": ")
        return (detail or last)[:300]
    return lines[0][:300]
