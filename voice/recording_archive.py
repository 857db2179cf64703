"""From a finished recorder to a stored, linked recording; and the same after a crash.

The recorder writes into the *incoming* folder (``recordings_dir/incoming``); a recording is
archived by storing it under its key, linking it to the call, and removing the incoming copy.
Whatever a crash leaves in the incoming folder (``.part`` files, finished but unlinked WAVs)
is picked up by :func:`recover_after_restart`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from povtor.errors import NotFound, PovtorError
from povtor.settings import Settings
from voice.call_records import CallRecord, CallState, RecordingRecord
from voice.call_store import CallStore
from voice.recording import PART_SUFFIX, RecordingInfo, recover_interrupted
from voice.recording_wav import BYTE_RATE, HEADER_BYTES
from voice.storage import RecordingStorage, recording_key

log = logging.getLogger(__name__)


def incoming_folder(settings: Settings) -> Path:
    """Where live recordings are written before they are archived."""
    return settings.recordings_dir / "incoming"


async def archive_recording(
    store: CallStore, storage: RecordingStorage, info: RecordingInfo, call: CallRecord
) -> RecordingRecord:
    """Store the finished file under its key, link it to the call, drop the incoming copy."""
    uri = await storage.put(info.path, recording_key(call.uuid, call.started_at))
    record = await store.attach_recording(call.uuid, info, uri, storage.kind)
    incoming_uri = await asyncio.to_thread(lambda: info.path.resolve().as_uri())
    if record.uri != incoming_uri:
        await asyncio.to_thread(info.path.unlink, missing_ok=True)
    return record


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    interrupted: tuple[CallRecord, ...] = ()
    archived: tuple[RecordingRecord, ...] = ()
    left: tuple[str, ...] = field(default=())  # file names left for a later run


def _describe(path: Path, call_uuid: str) -> RecordingInfo:
    """A finished recording found on disk (a crash came between finishing and archiving)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    size = os.path.getsize(path)
    return RecordingInfo(
        path=path,
        sha256=digest.hexdigest(),
        duration_s=max(0, size - HEADER_BYTES) / BYTE_RATE,
        size_bytes=size,
        call_uuid=call_uuid,
    )


def _leftovers(folder: Path) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.endswith(PART_SUFFIX):
            found.append((path.name[: -len(PART_SUFFIX)], path))
        elif path.suffix == ".wav" and not path.name.startswith("."):
            found.append((path.stem, path))
    return found


async def recover_after_restart(
    store: CallStore,
    storage: RecordingStorage,
    folder: Path,
    *,
    worker_id: str | None = None,
    started_before: datetime | None = None,
) -> RecoveryReport:
    """Mark a dead worker's calls interrupted and archive every recording they left behind.

    Only files of calls that are no longer active are touched, and a ``.part`` file still
    locked by a live recorder is skipped, so this is safe beside running workers and safe to
    run again.
    """
    interrupted = []
    if worker_id is not None or started_before is not None:
        interrupted = await store.mark_interrupted(
            worker_id=worker_id, started_before=started_before
        )
    archived: list[RecordingRecord] = []
    left: list[str] = []
    for call_uuid, path in await asyncio.to_thread(_leftovers, folder):
        try:
            call = await store.get_call(call_uuid)
        except NotFound:
            log.warning("recording %s has no call in the store; left as is", path.name)
            left.append(path.name)
            continue
        if call.state == CallState.ACTIVE:
            continue  # a live call (of this or another worker)
        try:
            if path.name.endswith(PART_SUFFIX):
                infos = await asyncio.to_thread(recover_interrupted, folder, [call_uuid])
            else:
                infos = [await asyncio.to_thread(_describe, path, call_uuid)]
            for info in infos:
                archived.append(await archive_recording(store, storage, info, call))
        except (OSError, PovtorError) as err:
            log.error("could not recover recording %s: %s", path.name, err)
            left.append(path.name)
    return RecoveryReport(tuple(interrupted), tuple(archived), tuple(left))
