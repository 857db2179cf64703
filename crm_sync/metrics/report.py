"""The repeat-sales report as plain data, and its JSON shape (``povtor report --json``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from povtor.domain import NpsSummary


@dataclass(frozen=True, slots=True)
class TenureCohort:
    name: str  # "first_deal", "1y", "2y", "5y", "10y"
    min_years: int
    clients: int
    bought_again: int
    coefficient: float | None
    healthy: bool | None  # coefficient >= 0.9


@dataclass(frozen=True, slots=True)
class ClassCell:
    abc: str
    xyz: str | None
    clients: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class RepeatSalesReport:
    start: datetime
    end: datetime
    activity_window_days: int
    nps: NpsSummary
    clients_at_start: int
    clients_at_end: int
    new_clients: int
    lost_clients: int
    retention_rate: float | None
    churn_rate: float | None
    buyers: int
    repeat_buyers: int
    repeat_purchase_rate: float | None
    orders: int
    revenue: Decimal
    average_order_value: Decimal | None
    purchase_frequency: float | None
    clients_to_date: int
    ltv: Decimal | None
    months: int
    abc_xyz: tuple[ClassCell, ...]
    tenure: tuple[TenureCohort, ...]

    def abc_totals(self) -> dict[str, dict[str, Any]]:
        totals: dict[str, dict[str, Any]] = {
            k: {"clients": 0, "revenue": Decimal(0)} for k in "ABC"
        }
        for cell in self.abc_xyz:
            totals[cell.abc]["clients"] += cell.clients
            totals[cell.abc]["revenue"] += cell.revenue
        return totals

    def xyz_totals(self) -> dict[str, int] | None:
        if not any(cell.xyz for cell in self.abc_xyz):
            return None
        totals = dict.fromkeys("XYZ", 0)
        for cell in self.abc_xyz:
            if cell.xyz:
                totals[cell.xyz] += cell.clients
        return totals

    def as_json(self) -> dict[str, Any]:
        money = _money
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "activity_window_days": self.activity_window_days,
            "nps": {
                "score": self.nps.nps,
                "promoters": self.nps.promoters,
                "passives": self.nps.passives,
                "detractors": self.nps.detractors,
                "responses": self.nps.responses,
                "asked": self.nps.asked,
                "response_rate": self.nps.response_rate,
            },
            "clients_at_start": self.clients_at_start,
            "clients_at_end": self.clients_at_end,
            "new_clients": self.new_clients,
            "lost_clients": self.lost_clients,
            "retention_rate": self.retention_rate,
            "churn_rate": self.churn_rate,
            "buyers": self.buyers,
            "repeat_buyers": self.repeat_buyers,
            "repeat_purchase_rate": self.repeat_purchase_rate,
            "orders": self.orders,
            "revenue": money(self.revenue),
            "average_order_value": money(self.average_order_value),
            "purchase_frequency": self.purchase_frequency,
            "clients_to_date": self.clients_to_date,
            "ltv": money(self.ltv),
            "months": self.months,
            "abc": {
                k: {"clients": v["clients"], "revenue": money(v["revenue"])}
                for k, v in self.abc_totals().items()
            },
            "xyz": self.xyz_totals(),
            "abc_xyz": {f"{c.abc}{c.xyz or ''}": c.clients for c in self.abc_xyz},
            "tenure": [
                {
                    "cohort": t.name,
                    "min_years": t.min_years,
                    "clients": t.clients,
                    "bought_again": t.bought_again,
                    "coefficient": t.coefficient,
                    "healthy": t.healthy,
                }
                for t in self.tenure
            ],
        }


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.01")))
