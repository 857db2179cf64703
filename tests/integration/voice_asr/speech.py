"""Call-like test audio made with espeak-ng and sox: robot (left) and client (right) taking turns.

The timeline is assembled here, so the exact place of every phrase is known to the tests.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 8000
ROBOT_LINES = [
    "안녕하세요 고객님 지난 주문에 대해 여쭤봐도 될까요",
    "상품은 마음에 드셨나요",
    "영점부터 십점까지 점수를 매겨 주세요",
    "이유를 말씀해 주시겠어요",
    "감사합니다 좋은 하루 보내세요",
]
CLIENT_LINES = [
    "네 괜찮아요 말씀하세요",
    "네 아주 좋았어요",
    "구점 드릴게요",
    "배송이 빨라서 좋았어요 직원도 친절했어요",
    "네 감사합니다",
]


@dataclass(frozen=True)
class Phrase:
    speaker: str  # "robot" or "client"
    text: str
    start: float  # seconds in the file where speech begins
    end: float  # seconds where it ends


def say(text: str, voice: str = "ko", speed: int = 150) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 8 kHz 16-bit mono samples trimmed to the speech."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, low = Path(tmp, "raw.wav"), Path(tmp, "8k.wav")
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True
        )
        subprocess.run(
            ["sox", "-V1", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(low)], check=True
        )
        samples = read_mono(low)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 200)
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def read_mono(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).copy()


def write_wav(path: Path, channels: list[np.ndarray], rate: int = RATE) -> None:
    data = np.stack(channels, axis=1) if len(channels) > 1 else channels[0]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(len(channels))
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.ascontiguousarray(data, dtype=np.int16).tobytes())


def noise(seconds: float, level_dbfs: float = -60.0, seed: int = 1) -> np.ndarray:
    """Line noise for "silent" stretches, so silence is realistic rather than digital zero."""
    rng = np.random.default_rng(seed)
    amplitude = 32768 * 10 ** (level_dbfs / 20)
    return (rng.standard_normal(int(seconds * RATE)) * amplitude).astype(np.int16)


def make_call(
    path: Path,
    turns: list[tuple[str, np.ndarray, str]],
    *,
    lead_s: float = 1.0,
    gap_s: float = 1.2,
    tail_s: float = 1.0,
    noise_dbfs: float | None = -60.0,
) -> list[Phrase]:
    """A stereo call: each turn (speaker, samples, text) is spoken after a pause, the other side
    silent; the channels are joined into one stereo file with ``sox -M``."""
    pos = int(lead_s * RATE)
    spans = []
    for speaker, samples, text in turns:
        spans.append((speaker, pos, pos + len(samples), samples, text))
        pos += len(samples) + int(gap_s * RATE)
    total = pos - int(gap_s * RATE) + int(tail_s * RATE)
    tracks = {"robot": np.zeros(total, np.int16), "client": np.zeros(total, np.int16)}
    for speaker, start, end, samples, _ in spans:
        tracks[speaker][start:end] = samples
    if noise_dbfs is not None:
        for seed, name in enumerate(tracks):
            mixed = (
                tracks[name].astype(np.int32) + noise(total / RATE, noise_dbfs, seed + 1)[:total]
            )
            tracks[name] = np.clip(mixed, -32768, 32767).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        left, right = Path(tmp, "left.wav"), Path(tmp, "right.wav")
        write_wav(left, [tracks["robot"]])
        write_wav(right, [tracks["client"]])
        subprocess.run(["sox", "-V1", "-M", str(left), str(right), str(path)], check=True)
    return [Phrase(s, t, a / RATE, b / RATE) for s, a, b, _, t in spans]


def dialogue(
    robot: list[np.ndarray], client: list[np.ndarray]
) -> list[tuple[str, np.ndarray, str]]:
    """Robot and client lines interleaved, robot first."""
    turns: list[tuple[str, np.ndarray, str]] = []
    for i, (r, c) in enumerate(zip(robot, client, strict=False)):
        turns.append(("robot", r, ROBOT_LINES[i % len(ROBOT_LINES)]))
        turns.append(("client", c, CLIENT_LINES[i % len(CLIENT_LINES)]))
    return turns
