"""The background transcriber the worker runs: new call recordings become stored transcripts.

Coupling to the recorder is only the folder and the file: a finished recording is a ``*.wav``
(the recorder writes ``*.wav.part`` and renames it when done), identified by the sha256 of its
bytes. Each scan hashes files not seen before (by path, size and mtime), transcribes those the
store does not know yet, and waits for the next scan or the stop event.

Recordings archived elsewhere (S3: the local copy is removed after the upload) are found in the
call store instead: each scan also takes the stored recordings that have no transcript yet,
fetches them into a cache folder, transcribes them and drops the fetched copy. A storage that
is down leaves them for the next scan (one warning, not one per file).

Why this queue does not run on the durable-work mechanism (:mod:`povtor.work`): there are no
queue rows to claim. The work is derived from what exists (a finished ``*.wav`` in the folder,
a stored recording without a transcript) and its result is the queue's only state: a transcript
row per sha256, where "done" is final and a second writer of the same file keeps the first
(:class:`voice.transcripts.TranscriptStore`), so two scanners can never store a file twice. A
claim table would add a copy of the folder to keep in step with it. Its failed transcripts are
its dead letters: they stay failed until a manager reruns them, and the managers' page of dead
letters lists them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from povtor.errors import ModelError, PovtorError, StoreError
from povtor.lifecycle import wait_for_first
from povtor.settings import Settings
from voice.asr_batch import Batch, BatchSummary, is_partial, start_pool
from voice.asr_tables import TranscriptRow
from voice.call_records import StorageKind
from voice.decode import options_from_settings
from voice.models import resolve_model
from voice.storage import RecordingStorage, storages_from_settings
from voice.tables import RecordingRow
from voice.transcripts import TranscriptStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingRecording:
    sha256: str
    uri: str
    storage: StorageKind


class StoredRecordings:
    """Recordings the call store keeps outside the local folder that have no transcript yet."""

    def __init__(
        self,
        engine: AsyncEngine,
        storages: Mapping[StorageKind, RecordingStorage],
        cache: Path,
        *,
        batch_size: int = 20,
    ) -> None:
        self.engine = engine
        self.storages: dict[StorageKind, RecordingStorage] = {
            k: v for k, v in storages.items() if k is not StorageKind.LOCAL
        }
        self.cache = cache
        self.batch_size = batch_size

    async def pending(self) -> list[PendingRecording]:
        has_transcript = exists().where(TranscriptRow.sha256 == RecordingRow.sha256)
        query = (
            select(RecordingRow.sha256, RecordingRow.uri, RecordingRow.storage)
            .where(
                RecordingRow.deleted_at.is_(None),
                RecordingRow.storage.in_([k.value for k in self.storages]),
                ~has_transcript,
            )
            .order_by(RecordingRow.id)
            .limit(self.batch_size)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [PendingRecording(r.sha256, r.uri, StorageKind(r.storage)) for r in rows]

    async def fetch(self, recording: PendingRecording) -> Path:
        dest = self.cache / f"{recording.sha256}.wav"
        await self.storages[recording.storage].get(recording.uri, dest)
        return dest


class RecordingTranscriber:
    def __init__(
        self,
        folder: Path,
        batch: Batch,
        *,
        interval_s: float = 30.0,
        stored: StoredRecordings | None = None,
    ) -> None:
        self.folder = folder
        self.batch = batch
        self.interval_s = interval_s
        self.stored = stored
        self._storage_down = False
        self._seen: dict[Path, tuple[int, int]] = {}  # path -> (size, mtime_ns) already handled
        self._wake = asyncio.Event()
        self.scans = 0
        self.scanned = asyncio.Event()  # set after every scan (for whoever waits on progress)

    def wake(self) -> None:
        """Scan now instead of at the next interval (e.g. when the recorder finishes a call)."""
        self._wake.set()

    def _new_files(self) -> tuple[list[Path], set[Path]]:
        """The finished recordings not handled yet, and every finished recording present."""
        if not self.folder.is_dir():
            return [], set()
        found: list[Path] = []
        present: set[Path] = set()
        incoming = self.folder / "incoming"
        for path in sorted(self.folder.rglob("*.wav")):
            if is_partial(path) or not path.is_file() or path.is_relative_to(incoming):
                continue  # incoming: not archived yet (it moves away, to a folder or a bucket)
            try:
                stat = path.stat()
            except OSError:
                continue  # removed while scanning (retention): nothing to do
            present.add(path)
            if self._seen.get(path) != (stat.st_size, stat.st_mtime_ns):
                found.append(path)
        return found, present

    async def scan_once(self) -> BatchSummary:
        """Transcribe every finished recording not transcribed yet; returns what happened."""
        files, present = await asyncio.to_thread(self._new_files)
        # a recording that left the folder (retention, an upload to S3) is forgotten: the
        # memory of what was handled stays the size of the folder, not of the worker's life
        self._seen = {p: seen for p, seen in self._seen.items() if p in present}
        summary = BatchSummary()
        if files:
            stats = {p: p.stat() for p in files}
            refs = {p: str(p.relative_to(self.folder)) for p in files}
            summary = await self.batch.run(files, refs=refs)
            for path, stat in stats.items():
                self._seen[path] = (stat.st_size, stat.st_mtime_ns)
        if self.stored is not None:
            remote = await self._scan_stored()
            summary.done += remote.done
            summary.failed += remote.failed
            summary.skipped += remote.skipped
            summary.audio_s += remote.audio_s
        if summary.done or summary.failed:
            log.info(
                "transcribed %d recordings (%.0f s of audio), %d failed",
                summary.done,
                summary.audio_s,
                summary.failed,
            )
        return summary

    async def _scan_stored(self) -> BatchSummary:
        assert self.stored is not None
        fetched: dict[Path, str] = {}
        try:
            for recording in await self.stored.pending():
                try:
                    fetched[await self.stored.fetch(recording)] = recording.uri
                except PovtorError as err:
                    if not self._storage_down:
                        log.warning("recordings to transcribe cannot be fetched: %s", err)
                    self._storage_down = True
                    break
            else:
                if self._storage_down:
                    log.info("recording storage answers again: transcribing what waited")
                self._storage_down = False
            if not fetched:
                return BatchSummary()
            return await self.batch.run(list(fetched), refs=fetched)
        finally:
            for path in fetched:
                path.unlink(missing_ok=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Scan until ``stop`` is set; the pool is closed on the way out."""
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self.scan_once()
                except (StoreError, ModelError) as err:
                    log.error("background transcription failed, retrying later: %s", err)
                self.scans += 1
                self.scanned.set()
                await wait_for_first(stop, self._wake, within=self.interval_s)
        finally:
            await self.batch.close()


def recording_transcriber(settings: Settings, engine: AsyncEngine) -> RecordingTranscriber:
    """The background transcriber as the worker runs it (raises ModelError without a model)."""
    model_path = resolve_model(settings.asr.model, settings.models_dir)
    options = options_from_settings(settings.asr)
    batch = Batch(
        TranscriptStore(engine),
        lambda: start_pool(model_path, settings.asr.workers, options, settings.asr.allocator),
        options=options,
        model_name=model_path.name,
        retry_failed=False,  # a file that failed stays failed until a manager reruns it
    )
    stored = None
    if settings.recordings.s3_bucket:
        stored = StoredRecordings(
            engine, storages_from_settings(settings), settings.data_dir / "cache" / "transcribe"
        )
    return RecordingTranscriber(
        settings.recordings_dir, batch, interval_s=settings.asr.scan_interval_s, stored=stored
    )
