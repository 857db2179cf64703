"""Repeat-sales formulas: pure functions over counts the SQL layer computes.

Definitions (the report documents the same):
- a client is *active* at a moment if they placed an order in the activity window before it
  (365 days by default);
- customer retention rate CRR = (active at end - new in period) / active at start;
- churn rate = share of the clients active at start who are no longer active at end;
- repeat purchase rate = buyers of the period with two or more orders in their history so far /
  buyers of the period;
- average order value AOV = revenue / orders of the period; purchase frequency = orders / buyers;
- LTV = revenue of all orders up to the end of the period / clients who ever ordered (historical);
- ABC: clients by their revenue in the period, largest first; A while the revenue before them is
  under 80% of the total, B under 95%, C the rest (80/15/5);
- XYZ: coefficient of variation of a client's monthly revenue over the months of the period
  (months without orders count as 0): X <= 10%, Y <= 25%, Z above. Needs 3 or more months;
- repeat-deal coefficient by tenure: clients who had ordered before the period, grouped by the
  years since their first order at the start of the period (first deal: under 1 year; 1-2, 2-5,
  5-10, 10+ years); the share of each group that ordered again in the period. A healthy
  long-tenure cohort is at 0.9 or above.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

ABC_A_SHARE = 0.80
ABC_B_SHARE = 0.95
XYZ_X_MAX_CV = 0.10
XYZ_Y_MAX_CV = 0.25
XYZ_MIN_MONTHS = 3
HEALTHY_REPEAT_COEFFICIENT = 0.9
TENURE_COHORTS: tuple[tuple[str, int], ...] = (
    ("first_deal", 0),
    ("1y", 1),
    ("2y", 2),
    ("5y", 5),
    ("10y", 10),
)  # (name, years since the first order at least)


class AbcClass(StrEnum):
    A = "A"
    B = "B"
    C = "C"


class XyzClass(StrEnum):
    X = "X"
    Y = "Y"
    Z = "Z"


def ratio(numerator: float | Decimal, denominator: float | Decimal) -> float | None:
    """numerator / denominator rounded to 4 places; None when there is nothing to divide by."""
    if not denominator:
        return None
    return round(float(numerator) / float(denominator), 4)


def nps_score(promoters: int, detractors: int, responses: int) -> float | None:
    """% promoters - % detractors, -100..100."""
    if responses == 0:
        return None
    return round(100.0 * (promoters - detractors) / responses, 1)


def retention_rate(at_start: int, at_end: int, new: int) -> float | None:
    """CRR = (clients at end - new clients) / clients at start."""
    return ratio(at_end - new, at_start)


def churn_rate(at_start: int, lost: int) -> float | None:
    return ratio(lost, at_start)


def repeat_purchase_rate(buyers: int, repeat_buyers: int) -> float | None:
    return ratio(repeat_buyers, buyers)


def average_order_value(revenue: Decimal, orders: int) -> Decimal | None:
    if orders == 0:
        return None
    return (revenue / orders).quantize(Decimal("0.01"))


def purchase_frequency(orders: int, buyers: int) -> float | None:
    return ratio(orders, buyers)


def lifetime_value(revenue_to_date: Decimal, clients_to_date: int) -> Decimal | None:
    if clients_to_date == 0:
        return None
    return (revenue_to_date / clients_to_date).quantize(Decimal("0.01"))


def abc_class(revenue_before: float, total: float) -> AbcClass:
    """The class of a client whose larger peers account for ``revenue_before`` of ``total``."""
    if revenue_before < ABC_A_SHARE * total:
        return AbcClass.A
    if revenue_before < ABC_B_SHARE * total:
        return AbcClass.B
    return AbcClass.C


def xyz_class(monthly: list[float], months: int) -> XyzClass | None:
    """From a client's monthly revenues (missing months are 0) over ``months`` months."""
    total = sum(monthly)
    if months < XYZ_MIN_MONTHS or total <= 0:
        return None
    return xyz_from_sums(total, sum(v * v for v in monthly), months)


def xyz_from_sums(total: float, squares: float, months: int) -> XyzClass:
    """CV^2 = squares * months / total^2 - 1 (population variance), compared without a root.

    The SQL layer uses the same comparison, so both agree to the last client.
    """
    scaled = squares * months
    if scaled <= (1 + XYZ_X_MAX_CV**2) * total * total:
        return XyzClass.X
    if scaled <= (1 + XYZ_Y_MAX_CV**2) * total * total:
        return XyzClass.Y
    return XyzClass.Z


def is_healthy(coefficient: float | None) -> bool | None:
    return None if coefficient is None else coefficient >= HEALTHY_REPEAT_COEFFICIENT
