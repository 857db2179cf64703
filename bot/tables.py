"""The bot's own tables: updates seen, link tokens, managers, FSM state, outbox, button presses.

Nothing outside ``bot`` reads them; the bot reaches the client history only through the store port.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from povtor.db import Base, BigId, UtcDateTime


class BotUpdateRow(Base):
    """An update id handled once (polling redelivery, webhook retries): claimed by a run of
    a worker at ``received_at``, ``handled_at`` once its handler finished (see
    :mod:`bot.update_log`)."""

    __tablename__ = "bot_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class BotLinkTokenRow(Base):
    """A deep-link token once used: bound to the first chat that used it."""

    __tablename__ = "bot_link_tokens"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BotManagerRow(Base):
    __tablename__ = "bot_managers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BotInviteRow(Base):
    """A one-time manager invite; only the SHA-256 of the code is kept."""

    __tablename__ = "bot_invites"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    used_by_chat: Mapped[int | None] = mapped_column(BigInteger)


class BotFsmRow(Base):
    """aiogram's FSM state and data of one chat (what the bot waits for there: a survey score,
    a reason, a complaint); in the database, so it survives restarts and every worker sees it."""

    __tablename__ = "bot_fsm"
    __table_args__ = (Index("ix_bot_fsm_state_updated_at", "state", "updated_at"),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BotOutboxRow(Base):
    """Every outbound message the bot owes someone, with its delivery status."""

    __tablename__ = "bot_outbox"
    __table_args__ = (Index("ix_bot_outbox_attempt_id", "attempt_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    attempt_id: Mapped[int | None] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(32))  # reorder, nps, winback, reply, alert...
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # queued, sent, failed, unreachable
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class BotPressRow(Base):
    """A button press recorded once per (message, button group)."""

    __tablename__ = "bot_presses"
    __table_args__ = (
        UniqueConstraint("outbox_id", "slot", name="uq_bot_presses_outbox_slot"),
        Index("ix_bot_presses_callback_query_id", "callback_query_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger)
    slot: Mapped[str] = mapped_column(String(32))  # "answer": one answer per message
    action: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    callback_query_id: Mapped[str] = mapped_column(String(64))
    pressed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BotAlertRow(Base):
    """A detractor or complaint alert for managers and the store task behind it."""

    __tablename__ = "bot_alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # detractor, complaint
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # open, taken, resolved
    taken_by: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BotLeaseRow(Base):
    """Who may do what only one worker may do (``polling``: call getUpdates), until when."""

    __tablename__ = "bot_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BotKeyRow(Base):
    """Keys every worker must share (``link``: signs deep links when POVTOR_SECRET_KEY is
    unset). Written once by the first worker; the database already holds all client data."""

    __tablename__ = "bot_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
