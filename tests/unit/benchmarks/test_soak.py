"""The soak run's verdict arithmetic (pure: the run itself is scripts/soak.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from soak import Sample, per_hour, phone_for, verdict

LIMITS = argparse.Namespace(max_rss_mb_h=20.0, max_fds_h=10.0)


@pytest.mark.parametrize(
    ("points", "slope"),
    [
        ([], 0.0),
        ([(0.0, 5.0)], 0.0),
        ([(0.0, 100.0), (3600.0, 110.0)], 10.0),
        ([(0.0, 100.0), (1800.0, 90.0), (3600.0, 80.0)], -20.0),
        ([(60.0, 7.0), (120.0, 7.0), (180.0, 7.0)], 0.0),
    ],
)
def test_growth_per_hour_is_the_least_squares_slope(
    points: list[tuple[float, float]], slope: float
) -> None:
    assert per_hour(points) == pytest.approx(slope)


def _sample(minute: int, rss_mb: float, fds: int) -> Sample:
    rss_kb = int(rss_mb * 1024)
    return Sample(minute * 60.0, rss_kb, rss_kb - 90 * 1024, fds, minute)


def _run(rss_mb_per_min: float, fds_per_min: float) -> list[Sample]:
    return [_sample(m, 250 + rss_mb_per_min * m, int(30 + fds_per_min * m)) for m in range(0, 31)]


def test_a_flat_run_passes_and_a_climbing_one_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert verdict(_run(0.0, 0.0), 0, LIMITS) == 0
    assert "verdict: flat" in capsys.readouterr().out
    assert verdict(_run(1.0, 0.0), 0, LIMITS) == 1  # 60 MB an hour
    assert "GROWING" in capsys.readouterr().out
    assert verdict(_run(0.0, 0.5), 0, LIMITS) == 1  # 30 descriptors an hour
    assert verdict(_run(0.0, 0.0), 1, LIMITS) == 1  # the worker did not stop cleanly


def test_soak_phones_answer_and_never_repeat_within_a_run() -> None:
    phones = [phone_for(n) for n in range(400)]
    assert len(set(phones)) == 400
    assert all(p.startswith("+79790990") and len(p) == 12 for p in phones)


def test_a_run_that_levels_off_after_filling_its_caches_passes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Up 1 MB a minute for 25 minutes, then flat: the whole-run fit climbs, the later half
    does not, and the verdict reads the later half."""
    samples = [_sample(m, 250 + min(m, 25), 30) for m in range(0, 61)]
    assert verdict(samples, 0, LIMITS) == 0
    out = capsys.readouterr().out
    assert "verdict: flat" in out
    whole = float(out.split("MB/h over all")[0].rsplit("RSS ", 1)[1])
    assert whole > LIMITS.max_rss_mb_h  # the fit over the whole run alone would call it growing
