"""The stored repeat-sales reports (owned by crm_sync's metrics; the dashboard reads them
through ``povtor.ports.RetentionView``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, String
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
