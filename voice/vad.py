"""Energy voice activity detection: which parts of a channel hold speech worth decoding.

Pure: 16-bit samples in, sample ranges out. Frames are 30 ms; a frame is speech when its level
stands clearly above the channel's own noise floor. Short pauses inside a phrase are bridged and
every region is padded, so word onsets and tails (quiet fricatives, plosive releases) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class VadConfig:
    frame_ms: int = 30
    pad_ms: int = 300  # kept before and after every speech run
    bridge_ms: int = 500  # pauses shorter than this stay inside one region
    min_speech_ms: int = 90  # shorter bursts (clicks) are not speech
    margin_db: float = 12.0  # above the noise floor
    floor_dbfs: float = -55.0  # never call anything quieter than this speech
    below_peak_db: float = 35.0  # the threshold never sits higher than peak minus this


@dataclass(frozen=True, slots=True)
class Region:
    start: int  # first sample
    end: int  # one past the last sample

    def seconds(self, rate: int) -> tuple[float, float]:
        return self.start / rate, self.end / rate


def frame_levels(samples: Samples, frame: int) -> npt.NDArray[np.float64]:
    """Level of each whole frame in dBFS (a trailing partial frame counts as one)."""
    if len(samples) == 0:
        return np.zeros(0)
    count = -(-len(samples) // frame)
    padded = np.zeros(count * frame, dtype=np.float64)
    padded[: len(samples)] = samples
    power = np.mean(np.square(padded.reshape(count, frame) / 32768.0), axis=1)
    return np.asarray(10.0 * np.log10(power + 1e-12), dtype=np.float64)


def threshold_db(levels: npt.NDArray[np.float64], config: VadConfig) -> float:
    noise = float(np.percentile(levels, 10))
    peak = float(np.max(levels))
    return max(config.floor_dbfs, min(noise + config.margin_db, peak - config.below_peak_db))


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs in ``mask``."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def speech_regions(samples: Samples, rate: int, config: VadConfig | None = None) -> list[Region]:
    """Sample ranges that hold speech, padded and merged, in order."""
    config = config or VadConfig()
    frame = max(1, rate * config.frame_ms // 1000)
    levels = frame_levels(samples, frame)
    if len(levels) == 0:
        return []
    mask = levels > threshold_db(levels, config)
    return regions_from_mask(mask, frame, rate, len(samples), config)


def regions_from_mask(
    mask: npt.NDArray[np.bool_], frame: int, rate: int, total: int, config: VadConfig
) -> list[Region]:
    """Speech frames (``mask``, one flag per ``frame`` samples) made into regions: pauses
    shorter than the bridge joined, bursts shorter than the minimum dropped, every region
    padded and overlapping ones merged. Shared by the energy and the Silero detector."""
    frame_ms = 1000 * frame / rate
    bridge = int(config.bridge_ms // frame_ms)
    runs: list[list[int]] = []
    for start, end in _runs(mask):
        if runs and start - runs[-1][1] <= bridge:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    min_frames = max(1, int(config.min_speech_ms // frame_ms))
    pad = rate * config.pad_ms // 1000
    regions: list[Region] = []
    for start, end in runs:
        if end - start < min_frames:
            continue
        lo = max(0, start * frame - pad)
        hi = min(total, end * frame + pad)
        if regions and lo <= regions[-1].end:
            regions[-1] = Region(regions[-1].start, hi)
        else:
            regions.append(Region(lo, hi))
    return regions


def speech_fraction(regions: list[Region], total: int) -> float:
    if total <= 0:
        return 0.0
    return sum(r.end - r.start for r in regions) / total
