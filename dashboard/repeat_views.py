"""Repeat sales in the browser: the figures of ``povtor report`` for a chosen period, each with
what it means; the ABC/XYZ matrix links to the clients of each cell.

The periods offered (``povtor.ports.REPORT_PERIODS``) show the report the worker stored in the
background, with when it was computed: a large base takes tens of seconds per report. Other
dates, and an offered period not stored yet, are computed on request only for a base of up to
``POVTOR_DASHBOARD_REPORT_LIVE_MAX_CLIENTS`` clients; otherwise the page says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from dashboard.charts import coefficient_chart
from dashboard.context import deps, render
from dashboard.periods import Period, parse_period, period
from dashboard.shared_pages import shared_page
from povtor.db import utcnow
from povtor.ports import REPORT_PERIODS, ReportSnapshot, RetentionView

DEFAULT_DAYS = 365  # as `povtor report` without --from
DEFAULT_PERIOD = "year"
PERIODS_RU = {"month": "30 дней", "quarter": "90 дней", "year": "год", "all": "всё время"}
HEALTHY_COEFFICIENT = 0.9
COHORT_RU = {
    "first_deal": "первая сделка (до 1 года)",
    "1y": "1–2 года",
    "2y": "2–5 лет",
    "5y": "5–10 лет",
    "10y": "10 лет и больше",
}
EXPLAIN = {
    "retention_rate": "Удержание (CRR): какая доля активных в начале периода клиентов осталась "
    "активной к концу (новые не в счёт). Активный — покупал за последние 365 дней.",
    "churn_rate": "Отток: доля активных в начале периода, кто к концу перестал покупать.",
    "repeat_purchase_rate": "Повторные покупки: доля покупателей периода, у которых это уже не "
    "первый заказ.",
    "average_order_value": "Средний чек (AOV): выручка периода, делённая на число заказов.",
    "purchase_frequency": "Частота: сколько заказов в среднем сделал один покупатель за период.",
    "ltv": "LTV: сколько в среднем принёс один клиент за всё время до конца периода.",
    "abc": "ABC: A — клиенты, дающие первые 80 % выручки периода, B — следующие 15 %, C — "
    "остальные 5 %. XYZ: насколько ровно клиент покупает по месяцам (X — стабильно, Y — с "
    "колебаниями, Z — редко и непредсказуемо; нужен период от трёх месяцев).",
    "tenure": "Коэффициент повторных сделок: доля клиентов с данным стажем, купивших снова в "
    "этом периоде. Норма для давних клиентов — 0,9 и выше; ниже — повод разбираться.",
}


def matrix(report: dict[str, Any] | Any, link: dict[str, str]) -> dict[str, Any]:
    """Rows A, B, C by columns X, Y, Z (or one column without XYZ), each with its link."""
    cells = report["abc_xyz"]
    columns = ["X", "Y", "Z"] if report["xyz"] is not None else [""]
    rows = []
    for abc in "ABC":
        row = []
        for xyz in columns:
            key = f"{abc}{xyz}"
            href = "/clients?" + urlencode({**link, "cell": key})
            row.append({"key": key, "clients": cells.get(key, 0), "href": href})
        rows.append((abc, row))
    return {"columns": columns, "rows": rows}


@shared_page()
async def repeat_page(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    tz = ZoneInfo(d.settings.default_timezone)
    now = utcnow()
    preset = request.query.get("period", "")
    custom = not preset and bool(request.query.get("from") or request.query.get("to"))
    if preset not in REPORT_PERIODS:
        preset = "" if custom else DEFAULT_PERIOD
    days = REPORT_PERIODS.get(preset) or DEFAULT_DAYS
    chosen = parse_period({} if preset else request.query, tz, now, days)
    context: dict[str, Any] = {
        "nav": "repeat",
        "period": chosen,
        "preset": preset,
        "presets": PERIODS_RU,
        "explain": EXPLAIN,
        "connected": d.retention is not None,
        "norm": HEALTHY_COEFFICIENT,
        "refresh_min": round(d.settings.dashboard.report_refresh_s / 60),
        "live_max": d.settings.dashboard.report_live_max_clients,
        "missing": False,  # no stored report of these days
        "report": None,
        "computed": "",
        "stored": False,  # a stored report: refreshed after every planning pass
    }
    if d.retention is None:
        return render(request, "repeat.html", context)
    retention = d.retention
    snapshot = await _snapshot(retention, preset or _preset_of(chosen, now, tz))
    report: dict[str, Any] | None = None
    stored_dates = None if snapshot is None else (snapshot.first, snapshot.last)
    if snapshot is not None and (preset or stored_dates == (chosen.first, chosen.last)):
        chosen = period(snapshot.first, snapshot.last, tz)
        report = dict(snapshot.report)
        local = snapshot.computed_at.astimezone(tz)
        context.update(
            period=chosen, computed=f"Рассчитано {local:%d.%m} в {local:%H:%M}", stored=True
        )
    elif preset == "all":
        context.update(missing=True)
    elif await d.recent.get(("clients",), retention.client_count) <= context["live_max"]:
        report = dict(
            await d.recent.get(
                ("repeat", chosen.start, chosen.end),
                lambda: retention.repeat_sales(chosen.start, chosen.end),
            )
        )
        context.update(computed="Рассчитано сейчас, по запросу", missing=bool(preset))
    else:
        context.update(missing=True)
    if report is not None:
        cohorts = [(COHORT_RU.get(t["cohort"], t["cohort"]), t) for t in report["tenure"]]
        context.update(
            report=report,
            cohorts=cohorts,
            matrix=matrix(report, chosen.query()),
            tenure_svg=coefficient_chart(
                [(name, t["coefficient"]) for name, t in cohorts], HEALTHY_COEFFICIENT
            ),
        )
    return render(request, "repeat.html", context)


async def _snapshot(retention: RetentionView, name: str | None) -> ReportSnapshot | None:
    return None if name is None else await retention.report_snapshot(name)


def _preset_of(chosen: Period, now: datetime, tz: ZoneInfo) -> str | None:
    """The offered period whose days up to today are exactly ``chosen``'s, if any."""
    today = now.astimezone(tz).date()
    for name, days in REPORT_PERIODS.items():
        if days is not None and chosen.last == today and chosen.days == days:
            return name
    return None
