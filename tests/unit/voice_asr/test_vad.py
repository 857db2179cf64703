"""Energy VAD: speech regions where the loud parts are, padded, merged, silence left out."""

from __future__ import annotations

import numpy as np
import pytest

from voice.vad import Region, VadConfig, speech_fraction, speech_regions

RATE = 8000


def tone(seconds: float, level: float = 0.3, freq: float = 300.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype(np.int16)


def hiss(seconds: float, dbfs: float = -60.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 32768 * 10 ** (dbfs / 20)).astype(np.int16)


def track(*parts: tuple[str, float]) -> np.ndarray:
    pieces = [
        tone(s) if kind == "speech" else hiss(s, seed=i) for i, (kind, s) in enumerate(parts)
    ]
    return np.concatenate(pieces)


def test_silence_only_has_no_speech() -> None:
    assert speech_regions(hiss(5.0), RATE) == []
    assert speech_regions(np.zeros(RATE * 3, np.int16), RATE) == []


def test_empty_channel_has_no_speech() -> None:
    assert speech_regions(np.zeros(0, np.int16), RATE) == []


def test_speech_between_silences_is_found_with_padding() -> None:
    samples = track(("silence", 2.0), ("speech", 1.0), ("silence", 2.0))
    [region] = speech_regions(samples, RATE, VadConfig(pad_ms=300))
    start, end = region.seconds(RATE)
    assert start == pytest.approx(1.7, abs=0.04)
    assert end == pytest.approx(3.3, abs=0.04)


def test_speech_at_the_edges_is_clipped_to_the_file() -> None:
    samples = track(("speech", 1.0), ("silence", 2.0), ("speech", 0.5))
    regions = speech_regions(samples, RATE)
    assert regions[0].start == 0
    assert regions[-1].end == len(samples)


def test_short_pause_inside_a_phrase_stays_in_one_region() -> None:
    samples = track(
        ("silence", 1.0), ("speech", 0.6), ("silence", 0.3), ("speech", 0.6), ("silence", 1.0)
    )
    assert len(speech_regions(samples, RATE)) == 1


def test_long_pause_between_turns_splits_regions() -> None:
    samples = track(
        ("silence", 1.0), ("speech", 0.6), ("silence", 3.0), ("speech", 0.6), ("silence", 1.0)
    )
    regions = speech_regions(samples, RATE)
    assert len(regions) == 2
    assert regions[0].end < regions[1].start
    assert speech_fraction(regions, len(samples)) < 0.5


def test_a_click_is_not_speech() -> None:
    samples = np.concatenate([hiss(1.0), tone(0.03), hiss(1.0, seed=1)])
    assert speech_regions(samples, RATE) == []


def test_quiet_speech_over_quiet_line_is_found() -> None:
    quiet = (tone(1.0) * 0.05).astype(np.int16)  # about -36 dBFS
    samples = np.concatenate([hiss(1.0, -70), quiet, hiss(1.0, -70, seed=2)])
    assert len(speech_regions(samples, RATE)) == 1


def test_a_channel_that_is_all_speech_is_one_region() -> None:
    samples = tone(3.0)
    assert speech_regions(samples, RATE) == [Region(0, len(samples))]
