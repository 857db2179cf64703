"""Tables of calls and their recordings (the ``voice`` migration branch).

``calls.target`` holds the dialled URI: personal data, fine in the store, never in logs.
``attempt_id`` has no foreign key: attempts belong to outreach.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from povtor.db import Base, BigId, UtcDateTime


class CallRow(Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_state_worker_id", "state", "worker_id"),
        Index("ix_calls_client_id", "client_id"),
        Index("ix_calls_attempt_id", "attempt_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(128), unique=True)
    client_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("clients.id", ondelete="SET NULL")
    )
    attempt_id: Mapped[int | None] = mapped_column(BigInteger)
    trunk: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))  # "out" or "in"
    target: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))  # active / finished / interrupted
    worker_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))  # an OutcomeKind value
    sip_code: Mapped[int | None] = mapped_column(Integer)
    sip_reason: Mapped[str | None] = mapped_column(String(255))
    hangup_by: Mapped[str | None] = mapped_column(String(8))  # robot / client / none
    dtmf: Mapped[str] = mapped_column(String(128), default="")
    # What the robot said: [{"start": s, "end": s, "text": "..."}, ...]
    robot_text: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class RecordingRow(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_call_id", "call_id"),
        Index("ix_recordings_created_at", "created_at"),
        Index("ix_recordings_transcription_state", "transcription_state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("calls.id", ondelete="CASCADE"))
    uri: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    duration_s: Mapped[float] = mapped_column(Float)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    storage: Mapped[str] = mapped_column(String(8))  # "local" or "s3"
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    transcription_state: Mapped[str] = mapped_column(String(16))  # pending / done / failed
