"""Call recordings: one stereo WAV per call (robot left, client right), written as it goes.

The media loop calls :meth:`CallRecorder.write_tick` every 20 ms; that only appends to two
in-memory buffers. About once a second the buffered audio is handed to a writer thread, which
interleaves it, appends it to ``<uuid>.wav.part`` and rewrites the header, so a worker killed
mid-call leaves a readable WAV of everything up to the last flush. :meth:`CallRecorder.finish`
fsyncs, renames to ``<uuid>.wav`` atomically, fsyncs the folder and checksums the file.
A live recorder holds an exclusive ``flock`` on its ``.part`` file, so
:func:`recover_interrupted` finalises only files whose writer is gone.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import functools
import hashlib
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from povtor.errors import AudioError
from povtor.private import make_private_dir
from voice.recording_wav import (
    BYTE_RATE,
    FRAME_BYTES,
    HEADER_BYTES,
    interleave,
    repair_header,
    wav_header,
)

log = logging.getLogger(__name__)

PART_SUFFIX = ".wav.part"
TICK_S = 0.02
_SILENCE = bytes(FRAME_BYTES)
_UUID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_T = TypeVar("_T")


class RecordingError(AudioError):
    """A recording could not be written, finished or recovered."""


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    path: Path
    sha256: str
    duration_s: float
    size_bytes: int
    call_uuid: str


class _Shard:
    """One writer thread and the appends queued for it since it last looked.

    Appends are many (every recorder hands over its buffered second of audio once a second:
    500 a second at 500 calls) and need no answer, so they are not executor jobs of their
    own: the loop adds each to a list under a lock, and one job runs every append queued by
    the time it starts. Measured: an executor submit (a future, a work item, a wake-up) per
    append took ~4% of the worker's CPU at 500 calls. A recording's file is created through
    the same list (before its first append, whatever else is queued); the jobs that answer
    (finish, discard, drain) go through the executor after it, and the job that runs the list
    is always ahead of them in the executor's order, so a recorder's writes stay in the order
    it made them."""

    def __init__(self, index: int) -> None:
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"recording-writer-{index}"
        )
        self._lock = threading.Lock()
        self._appends: list[Callable[[], object]] = []
        self._queued = False  # a job that runs the appends is queued or running

    def append(self, job: Callable[[], object]) -> None:
        with self._lock:
            self._appends.append(job)
            if self._queued:
                return
            self._queued = True
        self.executor.submit(self._run_appends)

    def _run_appends(self) -> None:
        while True:
            with self._lock:
                jobs, self._appends = self._appends, []
                if not jobs:
                    self._queued = False
                    return
            for job in jobs:
                job()


class RecordingWriter:
    """A few single-thread executors doing the file I/O of many recorders.

    Each recorder sticks to one thread, so its writes stay in order. The composition root owns
    one and closes it at shutdown; :func:`default_writer` serves tools and tests.
    """

    def __init__(self, threads: int = 2) -> None:
        self._shards = [_Shard(i) for i in range(max(1, threads))]
        self._next = itertools.count()
        self._phase = itertools.count()

    def shard(self) -> _Shard:
        return self._shards[next(self._next) % len(self._shards)]

    def first_flush(self, flush_ticks: int) -> int:
        """Ticks before a new recorder's first flush, staggered so that calls started together
        do not all flush in the same tick."""
        return 1 + next(self._phase) * 7 % flush_ticks

    def close(self) -> None:
        """Wait for every queued write, then stop the threads."""
        for shard in self._shards:
            shard.executor.shutdown(wait=True)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@functools.cache
def default_writer() -> RecordingWriter:
    """A process-wide writer created on first use (its threads are joined at interpreter exit)."""
    return RecordingWriter()


def _check_uuid(call_uuid: str) -> str:
    if not _UUID_RE.match(call_uuid):
        raise ValueError("call uuid must be 1-128 chars of [A-Za-z0-9._-], not starting with '.'")
    return call_uuid


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _sha256_fd(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _finalise(fd: int, part: Path, final: Path, call_uuid: str, data_bytes: int) -> RecordingInfo:
    """fsync, rename ``part`` to ``final``, fsync the folder, checksum; ``fd`` stays locked."""
    os.fsync(fd)
    os.rename(part, final)
    _fsync_dir(final.parent)
    return RecordingInfo(
        path=final,
        sha256=_sha256_fd(fd),
        duration_s=data_bytes / BYTE_RATE,
        size_bytes=HEADER_BYTES + data_bytes,
        call_uuid=call_uuid,
    )


class _PartFile:
    """The file side of one recording; only its writer thread touches it."""

    def __init__(self, part: Path, final: Path, call_uuid: str) -> None:
        self.part = part
        self.final = final
        self.call_uuid = call_uuid
        self.fd = -1
        self.data_bytes = 0

    def create(self) -> None:
        make_private_dir(self.part.parent)
        if self.final.exists():
            raise FileExistsError(errno.EEXIST, "recording already exists", str(self.final))
        fd = os.open(self.part, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _pwrite_all(fd, wav_header(0), 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def append(self, left: bytearray, right: bytearray) -> None:
        data = interleave(left, right)
        _pwrite_all(self.fd, data, HEADER_BYTES + self.data_bytes)
        self.data_bytes += len(data)
        # Data first, header second: the header never claims bytes that are not there.
        _pwrite_all(self.fd, wav_header(self.data_bytes), 0)

    def finish(self) -> RecordingInfo:
        try:
            return _finalise(self.fd, self.part, self.final, self.call_uuid, self.data_bytes)
        finally:
            self.close()

    def discard(self) -> None:
        try:
            self.part.unlink(missing_ok=True)
        finally:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class CallRecorder:
    """Records one call; not thread-safe: use it from the event loop that runs the call."""

    def __init__(
        self, folder: Path, call_uuid: str, writer: RecordingWriter, flush_ticks: int
    ) -> None:
        self.call_uuid = _check_uuid(call_uuid)
        self.path = folder / f"{call_uuid}.wav"
        self.part_path = folder / f"{call_uuid}{PART_SUFFIX}"
        self._file = _PartFile(self.part_path, self.path, call_uuid)
        self._shard = writer.shard()
        self._executor = self._shard.executor
        self._flush_ticks = max(1, flush_ticks)
        self._due = writer.first_flush(self._flush_ticks)
        self._left = bytearray()
        self._right = bytearray()
        self._pending = 0
        self._ticks = 0
        self._error: BaseException | None = None
        self._closed = False
        self._result: RecordingInfo | None = None
        self._shard.append(functools.partial(self._guarded_result, self._file.create))

    @classmethod
    def open(
        cls,
        folder: Path,
        call_uuid: str,
        *,
        writer: RecordingWriter | None = None,
        flush_interval_s: float = 1.0,
    ) -> CallRecorder:
        """Start recording; no blocking I/O here (the file is created by the writer thread)."""
        ticks = round(flush_interval_s / TICK_S)
        return cls(Path(folder), call_uuid, writer or default_writer(), ticks)

    @property
    def duration_s(self) -> float:
        return self._ticks * TICK_S

    @property
    def failed(self) -> bool:
        return self._error is not None

    def write_tick(self, robot: bytes | None, client: bytes | None) -> None:
        """One 20 ms tick: 320-byte frames, ``None`` = silence; ignored once finished."""
        if self._closed:
            return
        self._left += _SILENCE if robot is None else _fit(robot)
        self._right += _SILENCE if client is None else _fit(client)
        self._ticks += 1
        self._pending += 1
        if self._pending >= self._due:
            self._flush()

    async def drain(self) -> None:
        """Wait until every tick written so far is in the file (not yet fsynced)."""
        self._flush()
        await asyncio.wrap_future(self._executor.submit(lambda: None))  # after the appends
        self._raise_if_failed()

    async def finish(self) -> RecordingInfo:
        """Write the rest, fsync, rename atomically, checksum; a second call returns the same."""
        if self._result is not None:
            return self._result
        if self._closed:
            raise RecordingError(f"recording {self.call_uuid} was discarded or failed")
        self._flush()
        self._closed = True
        future = self._executor.submit(self._guarded_result, self._file.finish)
        result = await asyncio.wrap_future(future)
        self._raise_if_failed()
        assert result is not None
        self._result = result
        return result

    async def discard(self) -> None:
        """Drop the recording (a call that never connected): the ``.part`` file is removed."""
        if self._closed:
            return
        self._closed = True
        self._left.clear()
        self._right.clear()
        await asyncio.wrap_future(self._executor.submit(self._file.discard))

    def _flush(self) -> None:
        if not self._pending:
            return
        left, right = self._left, self._right
        self._left, self._right, self._pending = bytearray(), bytearray(), 0
        self._due = self._flush_ticks
        if self._error is None:
            self._shard.append(
                functools.partial(self._guarded_result, self._file.append, left, right)
            )

    def _guarded_result(self, job: Callable[..., _T], *args: object) -> _T | None:
        """Runs in the writer thread: after the first failure every later job is skipped."""
        if self._error is not None:
            return None
        try:
            return job(*args)
        except Exception as err:
            self._error = err  # raised by drain() and finish(): their caller says it
            log.debug("recording %s failed: %s", self.call_uuid, err)
            self._file.close()
            return None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RecordingError(f"recording {self.call_uuid} failed: {self._error}") from (
                self._error
            )


def _fit(frame: bytes) -> bytes:
    size = len(frame)
    if size == FRAME_BYTES:
        return frame
    if size > FRAME_BYTES:
        raise ValueError(f"a 20 ms frame is at most {FRAME_BYTES} bytes, got {size}")
    return bytes(frame) + bytes(FRAME_BYTES - size)


def recover_interrupted(
    folder: Path, call_uuids: Collection[str] | None = None
) -> list[RecordingInfo]:
    """Finalise ``.part`` files left by a killed worker (blocking: run it in a thread).

    The header is fixed from the file size, the file renamed and checksummed. Files still locked
    by a live recorder (in this or another process) are left alone; ``call_uuids`` narrows the
    sweep to those calls.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = None if call_uuids is None else set(call_uuids)
    recovered = []
    for part in sorted(folder.glob(f"*{PART_SUFFIX}")):
        call_uuid = part.name[: -len(PART_SUFFIX)]
        if wanted is not None and call_uuid not in wanted:
            continue
        info = _recover_one(part, folder / f"{call_uuid}.wav", call_uuid)
        if info is not None:
            recovered.append(info)
    return recovered


def _recover_one(part: Path, final: Path, call_uuid: str) -> RecordingInfo | None:
    try:
        fd = os.open(part, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # finished or discarded meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live recorder still writes it
        if not part.exists():
            return None  # renamed by its recorder just before we got the lock
        head = os.pread(fd, 12, 0)
        if len(head) == 12 and (head[:4] != b"RIFF" or head[8:] != b"WAVE"):
            log.warning("%s is not a WAV recording; left as is", part.name)
            return None
        if final.exists():
            log.warning("%s: %s already exists; left as is", part.name, final.name)
            return None
        data_bytes = repair_header(fd)
        info = _finalise(fd, part, final, call_uuid, data_bytes)
        log.info("recovered interrupted recording %s (%.1f s)", call_uuid, info.duration_s)
        return info
    finally:
        os.close(fd)
