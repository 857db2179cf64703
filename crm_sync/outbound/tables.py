"""Tables of the CRM push (crm_sync_0004): what to push to which connector and how far it got,
the cursor and lease per connector, cached contacts, rotated OAuth tokens. The history's own
tables are not read from here: the timeline comes through :class:`povtor.ports.TimelineFeed`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from povtor.db import Base, BigId, UtcDateTime


class CrmPushRow(Base):
    """One timeline event to push to one CRM connector, and how far it got.

    ``state``: pending -> sending (persisted before the request, so a crash leaves it visible)
    -> done (with ``remote_id``, in the same update) or back to pending with ``next_try_at``,
    or failed (refused, or out of attempts). ``in_doubt``: an earlier request may have landed,
    so the next try looks it up in the CRM before creating anything (so does a worker that takes
    the connector over and finds pushes left "sending")."""

    __tablename__ = "crm_push"
    __table_args__ = (
        UniqueConstraint("connector", "event_id", name="uq_crm_push_connector_event"),
        Index("ix_crm_push_due", "connector", "state", "next_try_at"),
        # the last push done, for the dashboard (crm_sync_0005)
        Index("ix_crm_push_state_updated", "connector", "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    connector: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # what it is for the CRM: nps, task, ...
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    in_doubt: Mapped[bool] = mapped_column(Boolean, default=False)
    next_try_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CrmCursorRow(Base):
    """Per connector: every event id up to ``last_event_id`` has been looked at, and which
    worker holds the sync (a lease, so one worker at a time talks to the CRM)."""

    __tablename__ = "crm_cursors"

    connector: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CrmContactRow(Base):
    """The CRM contact of a client, found or created once."""

    __tablename__ = "crm_contacts"

    connector: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    remote_id: Mapped[str] = mapped_column(String(64))
    created: Mapped[bool] = mapped_column(Boolean, default=False)  # created by Povtor
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CrmTokenRow(Base):
    """OAuth tokens of a connector as last rotated (amoCRM hands out a new refresh token with
    every access token and revokes the old one). ``seed`` fingerprints the configured tokens:
    when an operator configures new ones, they replace what is stored."""

    __tablename__ = "crm_tokens"

    connector: Mapped[str] = mapped_column(String(32), primary_key=True)
    seed: Mapped[str] = mapped_column(String(64))
    access_token: Mapped[str | None] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
