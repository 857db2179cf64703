"""A planning pass raises the cyclic collector's first threshold while it runs and leaves the
thresholds as it found them, also when passes overlap without nesting."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from outreach.planner import PASS_GC_THRESHOLD, fewer_collections


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_a_pass_raises_the_first_threshold_and_restores_all(
    thresholds: tuple[int, int, int],
) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (PASS_GC_THRESHOLD, 10, 10)
    assert gc.get_threshold() == thresholds


def test_overlapping_passes_restore_only_when_the_last_ends(
    thresholds: tuple[int, int, int],
) -> None:
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends while the second still runs
    assert gc.get_threshold()[0] == PASS_GC_THRESHOLD
    second.__exit__(None, None, None)
    assert gc.get_threshold() == thresholds


def _failing_pass() -> None:
    with fewer_collections():
        assert gc.get_threshold() == (PASS_GC_THRESHOLD * 2, 5, 5)
        raise RuntimeError("the pass failed")


def test_a_higher_threshold_is_kept_and_a_failed_pass_restores() -> None:
    before = gc.get_threshold()
    gc.set_threshold(PASS_GC_THRESHOLD * 2, 5, 5)
    try:
        with pytest.raises(RuntimeError, match="failed"):
            _failing_pass()
        assert gc.get_threshold() == (PASS_GC_THRESHOLD * 2, 5, 5)
    finally:
        gc.set_threshold(*before)
