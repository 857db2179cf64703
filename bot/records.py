"""What the bot's repository returns: frozen dataclasses, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class ChatStep(StrEnum):
    """What the bot waits for in a chat."""

    NPS_SCORE = "nps_score"
    NPS_REASON = "nps_reason"
    WINBACK_REASON = "winback_reason"
    WINBACK_RETURN = "winback_return"
    COMPLAINT = "complaint"


class SendStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    UNREACHABLE = "unreachable"


class AlertStatus(StrEnum):
    OPEN = "open"
    TAKEN = "taken"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class ChatState:
    chat_id: int
    step: ChatStep
    client_id: int | None
    attempt_id: int | None
    message_id: int | None  # outbox id of the question
    score: int | None
    data: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    chat_id: int
    client_id: int | None
    attempt_id: int | None
    purpose: str
    text: str
    status: SendStatus
    message_id: int | None
    tries: int
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    resumed: bool = False  # queued by an earlier execution that never recorded its send


@dataclass(frozen=True, slots=True)
class Manager:
    id: int
    chat_id: int
    name: str
    active: bool


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    client_id: int
    kind: str
    task_id: int | None
    status: AlertStatus
    taken_by: str | None
    text: str
    created_at: datetime
