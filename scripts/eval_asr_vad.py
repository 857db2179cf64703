"""Which VAD should pick the speech of a recording to transcribe: energy or Silero.

Each sample is a client's channel as a call records it (8 kHz): several Russian answers said by
espeak-ng (the phrases and voices of ``eval_vad.py``) with pauses of 1-4 s between them and 1 s
of line before the first, with sox noise (white, pink, brown) mixed in at several
signal-to-noise ratios. The truth is where the clean speech is (20 ms frames). Each detector
gives the regions the transcriber would decode (``voice.vad.speech_regions``, adaptive to the
recording's noise floor, and ``voice.vad_silero.silero_regions``; same bridging and padding).
Printed per condition, side by side:

- speech kept: the share of true speech frames inside a region (what is lost is never decoded);
- answers cut: answers not wholly inside one region (a cut answer may lose its first or last
  word);
- decoded: the share of the recording the regions cover (the transcriber's cost follows it);
- CPU of the detector per second of audio.

With ``--model DIR`` (a Vosk model) each channel is also decoded whole and region by region. A
word of the whole decode outside the regions is lost when it lies on true speech (within 0.3 s);
one that lies in a pause was heard in the noise, and leaving it out is a gain. Printed beside
the time decoding the regions took.

    .venv/bin/python scripts/eval_asr_vad.py [--snr 20 10 5] [--threshold 0.5] [--model DIR]

Needs ``espeak-ng`` and ``sox`` on the PATH.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from eval_vad import FRAME, NOISES, PHRASES, RATE, VOICES, noise, speech, truth_frames

from voice.audio import Channel
from voice.vad import Region, VadConfig, speech_regions
from voice.vad_silero import silero_regions

LEAD_S = 1.0
TURNS = 4  # answers per recording


@dataclass(frozen=True)
class Recording:
    audio: npt.NDArray[np.int16]
    truth: npt.NDArray[np.bool_]  # per 20 ms frame: speech
    answers: tuple[tuple[int, int], ...]  # [first, last + 1) sample of each answer


def build(folder: Path, snr_db: float | None, kind: str, count: int) -> list[Recording]:
    rng = random.Random(7)
    clips = [
        speech(folder, text, voice, speed, i)
        for i, (text, (voice, speed)) in enumerate((t, v) for t in PHRASES for v in VOICES)
    ]
    out = []
    for n in range(count):
        parts: list[npt.NDArray[np.float64]] = [np.zeros(int(LEAD_S * RATE))]
        spans = []
        at = len(parts[0])
        for _ in range(TURNS):
            clip = clips[rng.randrange(len(clips))]
            spans.append((at, at + len(clip)))
            pause = np.zeros(int(rng.uniform(1.0, 4.0) * RATE))
            parts += [clip, pause]
            at += len(clip) + len(pause)
        clean = np.concatenate(parts)
        clean = clean[: len(clean) // FRAME * FRAME]
        mixed = clean.copy()
        if snr_db is not None:
            voiced = np.concatenate([clean[a:b] for a, b in spans])
            rms = float(np.sqrt(np.mean(voiced**2)))
            bed = noise(folder, kind, 60.0)
            offset = (n * 7919) % max(1, len(bed) - len(mixed))
            mixed += bed[offset : offset + len(mixed)] * rms * 10 ** (-snr_db / 20)
        answers = tuple(_trim(clean, a, b) for a, b in spans)
        audio = np.clip(mixed, -32768, 32767).astype(np.int16)
        out.append(Recording(audio, truth_frames(clean), answers))
    return out


def _trim(clean: npt.NDArray[np.float64], a: int, b: int) -> tuple[int, int]:
    """The answer's span without the silence espeak-ng puts around it."""
    loud = np.flatnonzero(np.abs(clean[a:b]) > 32768 * 10 ** (-50 / 20))
    return (a + int(loud[0]), a + int(loud[-1]) + 1) if len(loud) else (a, b)


@dataclass
class Tally:
    speech: int = 0
    speech_kept: int = 0
    answers: int = 0
    answers_cut: int = 0
    samples: int = 0
    decoded: int = 0
    cpu_s: float = 0.0
    words: int = 0
    words_lost: int = 0
    noise_words: int = 0  # heard in a pause by the whole decode, left out by the regions
    decode_s: float = 0.0
    regions: list[list[Region]] = field(default_factory=list)

    def line(self, with_words: bool) -> str:
        text = (
            f"speech kept {self.speech_kept / self.speech:6.1%}  "
            f"answers cut {self.answers_cut:2d}/{self.answers}  "
            f"decoded {self.decoded / self.samples:6.1%}  "
            f"CPU {1000 * self.cpu_s / (self.samples / RATE):5.2f} ms/s"
        )
        if with_words:
            text += (
                f"  words lost {self.words_lost}/{self.words}"
                f" (noise words left out {self.noise_words})  decode {self.decode_s:5.1f} s"
            )
        return text


def score(recordings: list[Recording], find: Any) -> Tally:
    tally = Tally()
    for rec in recordings:
        started = time.process_time()
        regions: list[Region] = find(rec.audio)
        tally.cpu_s += time.process_time() - started
        tally.regions.append(regions)
        inside = np.zeros(len(rec.audio), dtype=np.bool_)
        for r in regions:
            inside[r.start : r.end] = True
        frames = inside[: len(rec.truth) * FRAME].reshape(len(rec.truth), FRAME).all(axis=1)
        tally.speech += int(rec.truth.sum())
        tally.speech_kept += int((rec.truth & frames).sum())
        tally.answers += len(rec.answers)
        tally.answers_cut += sum(
            not any(r.start <= a and b <= r.end for r in regions) for a, b in rec.answers
        )
        tally.samples += len(rec.audio)
        tally.decoded += int(inside.sum())
    return tally


def words_lost(model: Any, recordings: list[Recording], tally: Tally) -> None:
    from voice.decode import decode_channel

    for rec, regions in zip(recordings, tally.regions, strict=True):
        channel = Channel(speaker="client", samples=rec.audio)
        whole = decode_channel(model, channel, RATE, None)
        started = time.perf_counter()
        decode_channel(model, channel, RATE, regions)
        tally.decode_s += time.perf_counter() - started
        near = int(0.3 * RATE)
        for word in (w for s in whole for w in s.words):
            tally.words += 1
            mid = int((word.start + word.end) / 2 * RATE)
            if any(r.start <= mid < r.end for r in regions):
                continue
            on_speech = any(a - near <= mid < b + near for a, b in rec.answers)
            tally.words_lost += on_speech
            tally.noise_words += not on_speech


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snr", type=float, nargs="*", default=[20.0, 10.0, 5.0])
    parser.add_argument("--threshold", type=float, default=0.5, help="Silero speech score")
    parser.add_argument("--recordings", type=int, default=6, help="per condition")
    parser.add_argument("--model", type=Path, help="a Vosk model folder: count words lost")
    args = parser.parse_args()
    model = None
    if args.model is not None:
        from vosk import Model, SetLogLevel

        SetLogLevel(-1)
        model = Model(str(args.model))
    config = VadConfig()
    detectors = {
        "energy": lambda audio: speech_regions(audio, RATE, config),
        "silero": lambda audio: silero_regions(audio, RATE, config, threshold=args.threshold),
    }
    load = os.getloadavg()
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.recordings} "
        f"recordings of {TURNS} answers per condition; silero score > {args.threshold}"
    )
    conditions: list[tuple[float | None, str]] = [(None, "clean")]
    conditions += [(snr, kind) for snr in args.snr for kind in NOISES]
    with tempfile.TemporaryDirectory() as tmp:
        for snr, kind in conditions:
            recordings = build(Path(tmp), snr, kind, args.recordings)
            name = "clean" if snr is None else f"{kind} {snr:g} dB"
            for label, find in detectors.items():
                tally = score(recordings, find)
                if model is not None:
                    words_lost(model, recordings, tally)
                print(f"{name:18s} {label:6s} {tally.line(model is not None)}")


if __name__ == "__main__":
    main()
