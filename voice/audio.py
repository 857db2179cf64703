"""Loading audio of any format ffmpeg reads as 8 kHz 16-bit channels, in a stream.

A stereo file is a call recording: left is the robot, right is the client. Anything else is
mixed down to one "mono" channel (a voice message, a dictation).

Only what the decoder needs is ever held: 8 kHz 16-bit samples (58 MB an hour per channel),
read in blocks, from the robot's own WAV recordings directly and from anything else through an
``ffmpeg`` process that converts as it reads (loading the source whole, as pydub does, took
1.3 GB for an hour of 44.1 kHz stereo). What is not a regular file (a named pipe, a device) is
refused before it is opened, and a file longer than ``max_duration_s`` is refused with its
length, before it is decoded when the container says how long it is, else as soon as the
converted audio passes the limit.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import tempfile
import wave
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
MAX_DURATION_S = 4 * 3600.0
BLOCK_BYTES = 1 << 20
PROBE_TIMEOUT_S = 60.0


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


def load_audio(
    path: Path,
    *,
    rate: int = RATE,
    skip_robot: bool = False,
    max_duration_s: float = MAX_DURATION_S,
) -> LoadedAudio:
    """Decode ``path``; raises :class:`AudioError` saying why a file cannot be used."""
    try:
        info = os.stat(path)
    except OSError as err:
        raise AudioError(f"cannot read file: {err.strerror or err}") from err
    if not stat.S_ISREG(info.st_mode):
        raise AudioError("not a regular file (a named pipe, a device or a folder): refused")
    if info.st_size == 0:
        raise AudioError("empty file")
    raw, channels = _read_wav(path, rate, max_duration_s)
    if raw is None:
        raw, channels = _read_with_ffmpeg(path, rate, max_duration_s)
    frames = len(raw) // (2 * channels)
    if frames == 0:
        raise AudioError("no audio in file")
    samples = np.frombuffer(raw, dtype=np.int16, count=frames * channels)
    if channels == 2:
        pairs = samples.reshape(frames, 2)
        found = [Channel(CLIENT, np.ascontiguousarray(pairs[:, 1]))]
        if not skip_robot:
            found.insert(0, Channel(ROBOT, np.ascontiguousarray(pairs[:, 0])))
    else:
        found = [Channel(MONO, samples)]
    return LoadedAudio(
        rate=rate,
        duration_s=round(frames / rate, 3),
        stereo=channels == 2,
        channels=tuple(found),
    )


def _too_long(seconds: float, limit: float) -> AudioError:
    return AudioError(
        f"audio is {_length(seconds)} long, over the limit of {_length(limit)} "
        "(POVTOR_ASR_MAX_AUDIO_S): split it or raise the limit"
    )


def _length(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _read_wav(path: Path, rate: int, limit: float) -> tuple[bytearray | None, int]:
    """A WAV already in the decoder's format (the robot's recordings), read in blocks;
    (None, 0) for anything else, which goes through ffmpeg."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
            if wav.getsampwidth() != 2 or wav.getframerate() != rate or channels not in (1, 2):
                return None, 0
            if wav.getnframes() / rate > limit:
                raise _too_long(wav.getnframes() / rate, limit)
            out = bytearray()
            step = BLOCK_BYTES // (2 * channels)
            while block := wav.readframes(step):
                out += block
            return out, channels
    except (wave.Error, EOFError, ValueError):
        return None, 0  # not a plain PCM WAV (or damaged): ffmpeg says what it is
    except OSError as err:
        raise AudioError(f"cannot read file: {err.strerror or err}") from err


def _probe(path: Path) -> tuple[int, float | None]:
    """(channels, duration in seconds or None) of the first audio stream."""
    try:
        done = subprocess.run(
            [
                "ffprobe", "-v", "error", "-select_streams", "a:0",
                "-show_entries", "stream=channels:format=duration", "-of", "json", str(path),
            ],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        raise AudioError(f"not decodable audio: {err}") from err
    if done.returncode != 0:
        raise AudioError(f"not decodable audio: {_ffmpeg_reason(done.stderr)}")
    found = json.loads(done.stdout or "{}")
    streams = found.get("streams") or []
    if not streams:
        raise AudioError("no audio in file")
    duration = (found.get("format") or {}).get("duration")
    try:
        seconds = float(duration) if duration is not None else None
    except ValueError:
        seconds = None
    return int(streams[0].get("channels") or 1), seconds


def _read_with_ffmpeg(path: Path, rate: int, limit: float) -> tuple[bytearray, int]:
    source_channels, seconds = _probe(path)
    if seconds is not None and seconds > limit:
        raise _too_long(seconds, limit)
    channels = 2 if source_channels == 2 else 1
    most = int(limit * rate) * 2 * channels
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn",
        "-f", "s16le", "-acodec", "pcm_s16le", "-ac", str(channels), "-ar", str(rate),
        "-t", f"{limit + 1:.0f}", "pipe:1",
    ]  # fmt: skip
    out = bytearray()
    # ffmpeg's messages go to a file: a pipe nobody reads could fill up and stall it.
    with (
        tempfile.TemporaryFile() as messages,
        subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=messages
        ) as proc,
    ):
        stdout = proc.stdout
        if stdout is None:  # pragma: no cover - asked for a pipe above
            raise AudioError("ffmpeg gave no output")
        while block := stdout.read(BLOCK_BYTES):
            out += block
            if len(out) > most:
                proc.kill()
                proc.wait()
                raise _too_long(len(out) / (2 * channels * rate), limit)
        code = proc.wait()
        messages.seek(0)
        errors = messages.read().decode("utf-8", "replace")
    if code != 0:
        raise AudioError(f"not decodable audio: {_ffmpeg_reason(errors)}")
    return out, channels


def _ffmpeg_reason(output: str) -> str:
    """The line of ffmpeg's output that says what is wrong (its last one), else the first."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return "ffmpeg failed"
    last = lines[-1]
    if last.startswith(("lib", "configuration:", "built with")):
        return lines[0][:300]
    _, _, detail = last.rpartition(": ")  # "FILE: what is wrong": without the file's name
    return (detail or last)[:300]
