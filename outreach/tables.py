"""Tables of the outreach engine: attempts (the queue), their outcomes, contacts, workers.

Client data stays in crm_sync's tables, reached through ports: ``client_id`` is a client's id
there, without a foreign key (outreach_0005); a client's attempts are erased through
``ClientErasure``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from povtor.db import Base, BigId, UtcDateTime

_DUE = text("state IN ('planned', 'retry_scheduled')")
_LEASED = text("state IN ('claimed', 'in_progress')")
_FALLBACK = text("fallback_of IS NOT NULL")
_NPS = text("purpose = 'nps'")
_CAMPAIGN = text("campaign_id IS NOT NULL")


class AttemptRow(Base):
    """One contact to make: planned -> claimed -> in_progress -> done|retry_scheduled|given_up."""

    __tablename__ = "outreach_attempts"
    __table_args__ = (
        Index("ix_outreach_attempts_due", "not_before", postgresql_where=_DUE, sqlite_where=_DUE),
        Index(  # outreach_0004: the lease and its worker (takeovers, renewals, release)
            "ix_outreach_attempts_lease",
            "lease_expires_at",
            "worker_id",
            postgresql_where=_LEASED,
            sqlite_where=_LEASED,
        ),
        Index(  # "asked for an NPS score lately?"
            "ix_outreach_attempts_nps_client",
            "client_id",
            "created_at",
            postgresql_where=_NPS,
            sqlite_where=_NPS,
        ),
        Index(
            "ix_outreach_attempts_fallback_of",
            "fallback_of",
            postgresql_where=_FALLBACK,
            sqlite_where=_FALLBACK,
        ),
        Index(  # outreach_0002
            "ix_outreach_attempts_campaign",
            "campaign_id",
            postgresql_where=_CAMPAIGN,
            sqlite_where=_CAMPAIGN,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(BigId)  # crm_sync's client; no key (outreach_0005)
    purpose: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    not_before: Mapped[datetime] = mapped_column(UtcDateTime)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    attempt_no: Mapped[int] = mapped_column(Integer, default=1)  # the current/next execution
    reason: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    fallback_of: Mapped[int | None] = mapped_column(BigId)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    takeovers: Mapped[int] = mapped_column(Integer, default=0)
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    last_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    campaign_id: Mapped[int | None] = mapped_column(BigId)  # outreach_0002: waits for approval
    # outreach_0003: executions that failed on our side (trunk down); attempt_no - our_failures
    # is the client's try, so our faults use up none of the client's tries
    our_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AttemptOutcomeRow(Base):
    """Each outcome once (``dedup_key``); ``followup_done_at`` is null until the timeline and
    the closed loop (manager tasks) have seen it: an outbox that survives a crash."""

    __tablename__ = "outreach_outcomes"
    __table_args__ = (
        Index(
            "ix_outreach_outcomes_pending",
            "id",
            postgresql_where=text("followup_done_at IS NULL"),
            sqlite_where=text("followup_done_at IS NULL"),
        ),
        Index("ix_outreach_outcomes_attempt", "attempt_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    attempt_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("outreach_attempts.id", ondelete="CASCADE")
    )
    attempt_no: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str] = mapped_column(Text, default="")
    sip_code: Mapped[int | None] = mapped_column(Integer)
    ref: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    followup_done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ContactRow(Base):
    """A contact made (an execution started): what the caps count. One per execution: its
    key is the primary key (outreach_0004; no serial id)."""

    __tablename__ = "outreach_contacts"
    __table_args__ = (
        Index("ix_outreach_contacts_client", "client_id", "channel", "at"),
        Index("ix_outreach_contacts_at", "at"),  # outreach_0002: pacing over all clients
    )

    client_id: Mapped[int] = mapped_column(BigId)
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempt_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    attempt_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    purpose: Mapped[str | None] = mapped_column(String(16))  # outreach_0002


class CampaignRow(Base):
    """The attempts of one purpose from a planning pass that created more than the approval
    threshold: they wait (``pending``) until a manager approves or rejects them. A pass under
    the threshold releases its own at once (``auto``)."""

    __tablename__ = "outreach_campaigns"
    __table_args__ = (Index("ix_outreach_campaigns_state", "state", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))  # pending, auto, approved, rejected
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(128))


class PauseRow(Base):
    """A purpose whose new contacts are paused (one row per paused purpose)."""

    __tablename__ = "outreach_pauses"

    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)
    paused_at: Mapped[datetime] = mapped_column(UtcDateTime)
    paused_by: Mapped[str] = mapped_column(String(128))


class ActionRow(Base):
    """The outreach audit log: who approved, rejected, paused or resumed what, and when."""

    __tablename__ = "outreach_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))  # approve, reject, pause, resume
    target: Mapped[str] = mapped_column(String(64))  # "campaign:12", "purpose:winback"
    detail: Mapped[str] = mapped_column(Text, default="")


class WorkerRow(Base):
    """Workers that run or ran, with a heartbeat (leases say who holds what)."""

    __tablename__ = "outreach_workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
