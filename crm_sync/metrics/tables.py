"""The stored repeat-sales reports (owned by crm_sync's metrics; the dashboard reads them
through ``povtor.ports.RetentionView``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from povtor.db import Base, UtcDateTime


class ReportSnapshotRow(Base):
    """The latest report of each period the page offers, replaced by every refresh."""

    __tablename__ = "report_snapshots"

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReportCellRow(Base):
    """The ABC/XYZ class of each buyer of a stored period, written with its report (the
    matrix's cells list their clients from here, not by classifying every buyer again)."""

    __tablename__ = "report_cells"
    __table_args__ = (Index("ix_report_cells_cell", "period", "abc", "xyz", "client_id"),)

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    abc: Mapped[str] = mapped_column(String(1))
    xyz: Mapped[str | None] = mapped_column(String(1))  # None: a period under three months


class NpsDayRow(Base):
    """Scored NPS answers per day of the business's time zone, NPS group and reason category
    (``""``: none given or not classified), stored by the background refresh after every
    planning pass (PostgreSQL): the overview's trend and the reasons page add up days instead
    of counting a year of answers per request."""

    __tablename__ = "nps_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    grp: Mapped[str] = mapped_column(String(16), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    answers: Mapped[int] = mapped_column(Integer)


class StoredFiguresRow(Base):
    """When each set of stored figures was computed: ``through``, the moment up to which the
    answers were counted (what came after is counted on request)."""

    __tablename__ = "stored_figures"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    through: Mapped[datetime] = mapped_column(UtcDateTime)
