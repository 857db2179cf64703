"""Repeat sales in the browser: the figures of ``povtor report`` for a chosen period, each with
what it means; the ABC/XYZ matrix links to the clients of each cell."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from dashboard.charts import coefficient_chart
from dashboard.context import deps, render
from dashboard.periods import parse_period
from povtor.db import utcnow

DEFAULT_DAYS = 365  # as `povtor report` without --from
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


async def repeat_page(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    tz = ZoneInfo(d.settings.default_timezone)
    chosen = parse_period(request.query, tz, utcnow(), DEFAULT_DAYS)
    context: dict[str, Any] = {
        "nav": "repeat",
        "period": chosen,
        "explain": EXPLAIN,
        "connected": d.retention is not None,
        "norm": HEALTHY_COEFFICIENT,
    }
    if d.retention is not None:
        retention = d.retention
        report = dict(
            await d.recent.get(
                ("repeat", chosen.start, chosen.end),
                lambda: retention.repeat_sales(chosen.start, chosen.end),
            )
        )
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
