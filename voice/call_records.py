"""What the call store hands out: frozen records of calls and recordings, and their states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from povtor.domain import OutcomeKind


class CallState(StrEnum):
    ACTIVE = "active"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # the worker died during the call


class HangupBy(StrEnum):
    ROBOT = "robot"
    CLIENT = "client"
    NONE = "none"  # never connected, or cut by the network


class TranscriptionState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class StorageKind(StrEnum):
    LOCAL = "local"
    S3 = "s3"


@dataclass(frozen=True, slots=True)
class CallRecord:
    id: int
    uuid: str
    client_id: int | None
    attempt_id: int | None
    trunk: str
    direction: str
    target: str = field(repr=False)  # the dialled URI: personal data, kept out of logs
    state: CallState
    worker_id: str
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: OutcomeKind | None = None
    sip_code: int | None = None
    sip_reason: str | None = None
    hangup_by: HangupBy | None = None
    dtmf: str = ""
    robot_text: tuple[Mapping[str, Any], ...] = ()

    @property
    def talk_s(self) -> float:
        """Seconds from answer to hangup (0 when never answered or not over)."""
        if self.answered_at is None or self.ended_at is None:
            return 0.0
        return max(0.0, (self.ended_at - self.answered_at).total_seconds())


@dataclass(frozen=True, slots=True)
class RecordingRecord:
    id: int
    call_id: int
    uri: str
    sha256: str
    duration_s: float
    size_bytes: int
    storage: StorageKind
    created_at: datetime
    deleted_at: datetime | None = None
    transcription_state: TranscriptionState = TranscriptionState.PENDING
