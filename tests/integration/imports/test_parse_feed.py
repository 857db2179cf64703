"""The parsing child of an import: batches in order, its errors in the parent, no child left."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from itertools import count

import psutil
import pytest

from crm_sync.imports.parse_feed import ParseFeed, ParseProcessLost


def _counter(fail_at: int | None = None, die_at: int | None = None) -> Callable[[], int]:
    numbers: Iterator[int] = count(1)

    def make() -> int:
        number = next(numbers)
        if number == fail_at:
            raise ValueError(f"row {number} broke the parser")
        if number == die_at:
            os._exit(3)  # as if the child were killed
        return number

    return make


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_batches_arrive_in_order_from_a_child_that_then_ends() -> None:
    with ParseFeed(_counter(), lambda n: n == 3) as feed:
        assert feed.pid is not None
        assert feed.pid != os.getpid()
        pid = feed.pid
        assert [feed.receive() for _ in range(3)] == [1, 2, 3]
    assert _gone(pid)


def test_the_childs_state_moves_on_in_the_child_only() -> None:
    """The parser is forked as it stands: the parent's copy is not advanced."""
    make = _counter()
    assert make() == 1
    with ParseFeed(make, lambda n: n == 4) as feed:
        assert [feed.receive() for _ in range(3)] == [2, 3, 4]
    assert make() == 2


def test_an_error_in_the_child_is_raised_by_receive() -> None:
    with ParseFeed(_counter(fail_at=2), lambda n: False) as feed:
        assert feed.receive() == 1
        with pytest.raises(ValueError, match="row 2 broke the parser"):
            feed.receive()


def test_a_child_that_dies_is_reported_not_waited_for() -> None:
    with ParseFeed(_counter(die_at=2), lambda n: False) as feed:
        assert feed.receive() == 1
        with pytest.raises(ParseProcessLost, match="exit code"):
            feed.receive()


def test_leaving_early_ends_a_child_that_would_go_on_forever() -> None:
    big = "x" * 1_000_000  # fills the pipe: the child blocks in send

    with ParseFeed(lambda: big, lambda item: False) as feed:
        pid = feed.pid
        assert pid is not None
        assert feed.receive() == big
    assert _gone(pid)


def test_without_fork_the_batches_are_made_in_the_callers_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    make = _counter()
    with ParseFeed(make, lambda n: n == 2) as feed:
        assert feed.pid is None
        assert [feed.receive(), feed.receive()] == [1, 2]
    assert make() == 3  # the caller's own parser moved on


def test_asked_not_to_fork_the_feed_makes_batches_in_the_callers_thread() -> None:
    make = _counter()
    with ParseFeed(make, lambda n: n == 1, fork=False) as feed:
        assert feed.pid is None
        assert feed.receive() == 1
    assert make() == 2
