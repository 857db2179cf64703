"""Tables of the manager dashboard: its users, their server-side sessions, failed sign-ins and
the worker's health as published for every process serving the dashboard."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from povtor.db import Base, BigId, UtcDateTime


class DashboardUserRow(Base):
    __tablename__ = "dashboard_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    role: Mapped[str] = mapped_column(String(16))  # admin / manager / viewer
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DashboardSessionRow(Base):
    """One signed-in browser; the cookie holds a random token, the table only its sha256."""

    __tablename__ = "dashboard_sessions"
    __table_args__ = (Index("ix_dashboard_sessions_expires_at", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("dashboard_users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DashboardLoginFailureRow(Base):
    """Failed sign-ins per key ("login:anna", "ip:10.0.0.7"), shared by every serving process."""

    __tablename__ = "dashboard_login_failures"
    __table_args__ = (Index("ix_dashboard_login_failures_last_failure", "last_failure"),)

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure: Mapped[datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DashboardHealthRow(Base):
    """A worker's component as it last reported itself (``source``: the worker's id)."""

    __tablename__ = "dashboard_health"

    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime | None] = mapped_column(UtcDateTime)
