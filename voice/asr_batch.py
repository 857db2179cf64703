"""Transcribing a set of files exactly once: hash, skip what is done, decode the rest, store each.

Each file is keyed by the sha256 of its bytes. A transcript is written in one transaction when its
file is finished, so a crash leaves only whole transcripts and a rerun skips them. A file that
cannot be used is stored as failed with the reason, and the batch goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from povtor.errors import AudioError, ModelError
from povtor.ports import Transcript
from voice.decode import DecodeOptions
from voice.transcribe import Allocator, TranscriberPool
from voice.transcripts import DONE, TranscriptStore

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset(
    {".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".amr", ".webm", ".mp4"}
    | {".mkv", ".mka", ".wma", ".3gp", ".gsm", ".au"}
)
PARTIAL_MARKERS = (".tmp", ".part", ".partial")


@dataclass(frozen=True, slots=True)
class FileResult:
    path: Path
    sha256: str
    transcript: Transcript | None  # None when failed
    error: str | None = None
    skipped: bool = False  # already done before this run


@dataclass(slots=True)
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    audio_s: float = 0.0


NOT_A_FILE = "not a regular file (a named pipe, a device or a folder): refused"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def unreadable_key(path: Path) -> str:
    """Key of a file whose bytes cannot be read: the hash of its absolute path."""
    return hashlib.sha256(f"unreadable:{path.resolve()}".encode()).hexdigest()


def is_partial(path: Path) -> bool:
    return any(marker in path.name for marker in PARTIAL_MARKERS) or path.name.startswith(".")


def collect_files(inputs: Iterable[Path]) -> list[Path]:
    """Files given, plus the audio files found under folders given (recursively), in order."""
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found.extend(
                p
                for p in sorted(item.rglob("*"))
                if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not is_partial(p)
            )
        else:
            found.append(item)
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


PoolFactory = Callable[[], Awaitable[TranscriberPool]]
ResultFn = Callable[[FileResult], None]


class Batch:
    """Runs files through a pool (started only when some file needs decoding) into the store."""

    def __init__(
        self,
        store: TranscriptStore,
        pool_factory: PoolFactory,
        *,
        options: DecodeOptions | None = None,
        model_name: str | None = None,
        retry_failed: bool = True,
        close_pool: bool = True,
    ) -> None:
        self.store = store
        self._pool_factory = pool_factory
        self._pool: TranscriberPool | None = None
        self._pool_lock = asyncio.Lock()
        self.options = options or DecodeOptions()
        self.model_name = model_name
        self.retry_failed = retry_failed
        self.close_pool = close_pool  # False: the pool belongs to the caller (shared)

    async def pool(self) -> TranscriberPool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await self._pool_factory()
            return self._pool

    async def run(
        self,
        files: Sequence[Path],
        on_result: ResultFn | None = None,
        *,
        refs: dict[Path, str] | None = None,
    ) -> BatchSummary:
        summary = BatchSummary()
        keyed = await asyncio.gather(*(self._key(p) for p in files))
        statuses = await self.store.statuses([sha for sha, _ in keyed])
        needs_pool = any(self._needs_work(statuses.get(sha), err) for sha, err in keyed)
        workers = (await self.pool()).workers if needs_pool else 1
        limit = asyncio.Semaphore(workers * 2)

        async def one(path: Path, sha: str, read_error: str | None) -> FileResult:
            status = statuses.get(sha)
            if status == DONE or (status is not None and not self.retry_failed):
                return await self._stored(path, sha)
            async with limit:
                return await self._transcribe(path, sha, read_error, (refs or {}).get(path))

        async def same_as(path: Path, first: asyncio.Task[FileResult]) -> FileResult:
            done = await first  # the same bytes under another name: decoded once
            transcript = done.transcript
            if transcript is not None:
                transcript = Transcript(str(path), transcript.duration_s, transcript.segments)
            return FileResult(path, done.sha256, transcript, done.error, done.skipped)

        firsts: dict[str, asyncio.Task[FileResult]] = {}
        tasks: list[asyncio.Task[FileResult]] = []
        for path, (sha, read_error) in zip(files, keyed, strict=True):
            if sha in firsts:
                tasks.append(asyncio.ensure_future(same_as(path, firsts[sha])))
            else:
                firsts[sha] = asyncio.ensure_future(one(path, sha, read_error))
                tasks.append(firsts[sha])
        try:
            for next_done in asyncio.as_completed(tasks):
                result = await next_done
                if result.skipped:
                    summary.skipped += 1
                elif result.error is not None:
                    summary.failed += 1
                else:
                    summary.done += 1
                if result.transcript is not None:
                    summary.audio_s += result.transcript.duration_s
                if on_result is not None:
                    on_result(result)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return summary

    def _needs_work(self, status: str | None, read_error: str | None) -> bool:
        if read_error is not None:
            return False
        return status is None or (status != DONE and self.retry_failed)

    async def _key(self, path: Path) -> tuple[str, str | None]:
        try:
            info = await asyncio.to_thread(os.stat, path)
            if not stat.S_ISREG(info.st_mode):  # opening a named pipe would wait for a writer
                return unreadable_key(path), NOT_A_FILE
            return await asyncio.to_thread(sha256_file, path), None
        except OSError as err:
            return unreadable_key(path), f"cannot read file: {err.strerror or err}"

    async def _stored(self, path: Path, sha: str) -> FileResult:
        stored = await self.store.get(sha)
        if stored is None:  # vanished in between: cannot happen without a manual delete
            return FileResult(path, sha, None, "transcript disappeared from the store")
        if not stored.done:
            return FileResult(path, sha, None, stored.error or "failed", skipped=True)
        transcript = Transcript(str(path), stored.duration_s, stored.segments)
        return FileResult(path, sha, transcript, skipped=True)

    async def _transcribe(
        self, path: Path, sha: str, read_error: str | None, ref: str | None
    ) -> FileResult:
        if read_error is None:
            try:
                pool = await self.pool()
                transcript = await pool.transcribe(path, self.options)
            except AudioError as err:
                read_error = str(err)
            else:
                stored = await self.store.save_done(
                    sha, transcript, model=self.model_name, recording_ref=ref
                )
                if stored.done and stored.segments != transcript.segments:
                    transcript = stored.transcript()  # someone else finished it first
                return FileResult(path, sha, transcript)
        await self.store.save_failed(
            sha, str(path), read_error, model=self.model_name, recording_ref=ref
        )
        log.warning("transcription of %s failed: %s", path.name, read_error)
        return FileResult(path, sha, None, read_error)

    async def close(self) -> None:
        if self._pool is not None and self.close_pool:
            await self._pool.aclose(cancel=True)
        self._pool = None


async def start_pool(
    model_path: Path,
    workers: int = 0,
    options: DecodeOptions | None = None,
    allocator: Allocator = "jemalloc",
) -> TranscriberPool:
    """A pool with every process started and its model loaded."""
    pool = TranscriberPool(model_path, workers=workers, options=options, allocator=allocator)
    try:
        await pool.warm_up()
    except ModelError:
        await pool.aclose(cancel=True)
        raise
    return pool
