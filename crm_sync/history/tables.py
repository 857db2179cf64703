"""Tables of the client history store (owned by crm_sync; others reach them through the store)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from povtor.db import Base, BigId, UtcDateTime
from povtor.domain import NPS_SCORES

_OPTED_OUT = text("opted_out_at IS NOT NULL")


class ClientRow(Base):
    __tablename__ = "clients"
    # crm_sync_0010: the client list's "opted out" filter in id order; on PostgreSQL the
    # migration adds trigram indexes on name (and client_phones.phone) for substring search
    __table_args__ = (
        Index("ix_clients_opted_out", "id", postgresql_where=_OPTED_OUT,
              sqlite_where=_OPTED_OUT),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    manager: Mapped[str | None] = mapped_column(String(128))
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    telegram_reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    opt_out_source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ClientPhoneRow(Base):
    __tablename__ = "client_phones"
    __table_args__ = (
        UniqueConstraint("client_id", "phone", name="uq_client_phones_client_phone"),
        Index("ix_client_phones_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)


class ConsentRow(Base):
    __tablename__ = "consents"

    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # crm_sync_0006
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_client_placed", "client_id", "placed_at"),
        Index("ix_orders_placed_at", "placed_at", "client_id", "amount"),  # crm_sync_0002
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    category: Mapped[str | None] = mapped_column(String(128))  # main product category, if known
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EventRow(Base):
    """The append-only client timeline."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_kind_at", "kind", "at"),  # crm_sync_0002
        # crm_sync_0006: the timeline; also every other read by client (crm_sync_0009 dropped
        # the (client_id, id) index that no query used)
        Index("ix_events_client_at", "client_id", "at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    summary: Mapped[str] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)


class NpsResponseRow(Base):
    __tablename__ = "nps_responses"
    __table_args__ = (
        Index("ix_nps_responses_answered_at", "answered_at"),
        Index("ix_nps_responses_client", "client_id", "answered_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    score: Mapped[int | None] = mapped_column(Integer)
    reason_text: Mapped[str | None] = mapped_column(Text)
    reason_category: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    source_kind: Mapped[str | None] = mapped_column(String(16))
    source_id: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_status_due", "status", "due_at"),
        Index("ix_tasks_client", "client_id", "due_at"),  # crm_sync_0012: the card's tasks
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(128))
    source_ref: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ImportRunRow(Base):
    """One run of `povtor import`: what came in and what was rejected, for managers to see."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    file: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    rejects_file: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


def _score_between(low: int, high: int) -> Any:
    # literal bounds: the list's filter and the partial index read the same text
    return text(f"last_nps_score BETWEEN {low} AND {high}")


NPS_GROUP_WHERE = {group: _score_between(*bounds) for group, bounds in NPS_SCORES.items()}


class ClientStatsRow(Base):
    """Per-client summary kept at write time (crm_sync_0003), so reports need not group every
    order by client; the last scored NPS answer (crm_sync_0007), so the client list filters by
    it. Written only by ``crm_sync.history.client_stats``. A client with answers and no orders
    has a row with 0 orders and no order dates."""

    __tablename__ = "client_stats"
    __table_args__ = (
        Index("ix_client_stats_first_last", "first_order_at", "last_order_at", "orders_count"),
        # crm_sync_0007: the clients of one NPS group in id order, for the client list's pages
        *(
            Index(f"ix_client_stats_{group.value}", "client_id", postgresql_where=where,
                  sqlite_where=where)
            for group, where in NPS_GROUP_WHERE.items()
        ),
    )  # fmt: skip

    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    first_order_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    orders_count: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    last_nps_id: Mapped[int | None] = mapped_column(BigInteger)
    last_nps_score: Mapped[int | None] = mapped_column(Integer)
    last_nps_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ErasureRequestRow(Base):
    """A request to erase a client everywhere (152-FZ), kept as the record that it was done:
    when, by whom, what each part removed (counts). No personal data: the client's id is the
    store's own number, which names nobody once the client is gone (crm_sync_0013)."""

    __tablename__ = "erasure_requests"
    __table_args__ = (Index("ix_erasure_requests_state", "state", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(BigInteger)  # no key: the client goes, this stays
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    requested_by: Mapped[str] = mapped_column(String(160))  # "cli:HOST", "dashboard:LOGIN"
    state: Mapped[str] = mapped_column(String(16))  # pending, done
    removed: Mapped[dict[str, Any]] = mapped_column(JSON)  # part -> {noun: count}
    tries: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # the last failure, masked
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SuppressionRow(Base):
    """An erased client's phone or code as a keyed digest (HMAC-SHA256): imports skip it and
    planning leaves it out (crm_sync_0013)."""

    __tablename__ = "erasure_suppressions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ErasureKeyRow(Base):
    """The suppression key: generated once when ``POVTOR_ERASURE_KEY`` is unset (``value``),
    else only the fingerprint of the configured one, so a changed key is refused instead of
    silently matching nothing (crm_sync_0013)."""

    __tablename__ = "erasure_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
