"""Batches made in a child process while the importing process writes the previous one.

Parsing a large file is as much CPU as writing it. In a thread of the writing process the two
share one GIL: every time the writer lets it go (SQLite's executemany does for every row) the
parser takes it, and the writer waits up to a switch interval to get it back. A forked child
has its own interpreter and the second core; it gets the parser as it stands in the parent (the
open file, the header already read) without pickling it, and hands each batch back through a
pipe, one batch ahead: ``send`` blocks while the pipe is full, so at most two batches are in
flight. With ``fork=False``, or where ``fork`` is not available (Windows), the batches are made
in the caller's thread.

The child pays off where the writer needs the GIL all along: SQLite's executemany takes it back
for every row. A PostgreSQL import's writer needs it only to send a COPY and a few statements
per batch, so a parser thread already runs beside the server, and a child would only add the
batches' pickling (its rounds showed no gain: 1.13x and 1.19x the thread's time, loaded machine).

The child ignores SIGINT (the parent handles Ctrl+C and ends the child) and stops listening on
the parent's signal wake-up descriptor. An error in the child is raised by ``receive`` in the
parent; a child that dies without a word raises ``ParseProcessLost``.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Generic, TypeVar

from povtor.errors import PovtorError

T = TypeVar("T")


class ParseProcessLost(PovtorError):
    """The parsing child ended without handing over the next batch (killed, out of memory)."""


def _serve(make: Callable[[], T], is_last: Callable[[T], bool], conn: Connection) -> None:
    """The child: make batches until the last one, or until the parent stops reading."""
    signal.set_wakeup_fd(-1)  # the parent's event loop owns that descriptor
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while True:
            item = make()
            conn.send((True, item))
            if is_last(item):
                return
    except BrokenPipeError:
        return  # the parent closed its end: it needs no more batches
    except BaseException as err:  # raised again in the parent
        try:
            conn.send((False, err))
        except BrokenPipeError:
            return
        except Exception:  # an error that does not pickle: its type and text
            conn.send((False, RuntimeError(f"{type(err).__name__}: {err}")))


class ParseFeed(Generic[T]):
    """``make()`` called again and again in a forked child; ``receive()`` the next result.

    Used as a context manager: leaving it ends the child (a batch it is still making is thrown
    away, as the caller stops reading only when it has failed or is done).
    """

    def __init__(
        self, make: Callable[[], T], is_last: Callable[[T], bool], *, fork: bool = True
    ) -> None:
        self._make = make
        self._fork = fork
        self._is_last = is_last
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id; None when the batches are made in the caller's thread."""
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> ParseFeed[T]:
        if not self._fork or "fork" not in multiprocessing.get_all_start_methods():
            return self
        context = multiprocessing.get_context("fork")
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(
            target=_serve,
            args=(self._make, self._is_last, sending),
            name="import-parse",
            daemon=True,  # never outlives the import
        )
        process.start()
        sending.close()  # the child's end: EOF here once the child is gone
        self._conn, self._process = receiving, process
        return self

    def receive(self) -> T:
        """The next batch (blocking: call it off the event loop)."""
        if self._conn is None:
            return self._make()
        try:
            ok, item = self._conn.recv()
        except EOFError:
            code = self._process.exitcode if self._process is not None else None
            raise ParseProcessLost(
                f"the parsing process ended without the next batch (exit code {code})"
            ) from None
        if not ok:
            raise item
        return item  # type: ignore[no-any-return]

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            self._conn.close()  # a child blocked in send gets EPIPE
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()  # it may be in the middle of a batch
            self._process.join()
            self._process.close()
        self._conn = self._process = None
