"""`povtor report` on a terminal: the figures a repeat-sales manager reads, in Russian."""

from __future__ import annotations

from typing import Any

from crm_sync.metrics.report import RepeatSalesReport

COHORT_NAMES = {
    "first_deal": "после первой сделки (< 1 года)",
    "1y": "1-2 года",
    "2y": "2-5 лет",
    "5y": "5-10 лет",
    "10y": "10+ лет",
}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _v(value: Any) -> str:
    return "—" if value is None else str(value)


def render_report(report: RepeatSalesReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]Повторные продажи[/bold] {report.start:%Y-%m-%d} — {report.end:%Y-%m-%d} (UTC)"
    )
    n = report.nps
    summary = Table(show_header=False)
    summary.add_column("Показатель")
    summary.add_column("Значение", justify="right")
    rows = [
        ("NPS", _v(n.nps)),
        ("Промоутеры / нейтралы / критики", f"{n.promoters} / {n.passives} / {n.detractors}"),
        ("Ответов / опрошено (доля)", f"{n.responses} / {n.asked} ({_pct(n.response_rate)})"),
        ("Клиентов на начало / на конец", f"{report.clients_at_start} / {report.clients_at_end}"),
        ("Новых клиентов", str(report.new_clients)),
        ("Удержание (CRR)", _pct(report.retention_rate)),
        ("Отток", _pct(report.churn_rate)),
        ("Покупателей / повторных", f"{report.buyers} / {report.repeat_buyers}"),
        ("Доля повторных покупок", _pct(report.repeat_purchase_rate)),
        ("Заказов / выручка", f"{report.orders} / {report.revenue}"),
        ("Средний чек (AOV)", _v(report.average_order_value)),
        ("Частота покупок", _v(report.purchase_frequency)),
        ("LTV (выручка на клиента за всё время)", _v(report.ltv)),
    ]
    for label, value in rows:
        summary.add_row(label, value)
    console.print(summary)

    matrix = Table(title="ABC / XYZ (клиентов)")
    matrix.add_column("")
    xyz = ("X", "Y", "Z") if report.xyz_totals() else ("",)
    for column in xyz:
        matrix.add_column(column or "все", justify="right")
    counts = {(c.abc, c.xyz or ""): c.clients for c in report.abc_xyz}
    for abc in "ABC":
        matrix.add_row(abc, *(str(counts.get((abc, x), 0)) for x in xyz))
    console.print(matrix)

    tenure = Table(title="Коэффициент повторных сделок по стажу клиента (норма от 0.9)")
    for column in ("Стаж", "Клиентов", "Купили снова", "Коэффициент"):
        tenure.add_column(column)
    for t in report.tenure:
        mark = "" if t.healthy is None else (" ✓" if t.healthy else " ✗")
        tenure.add_row(
            COHORT_NAMES.get(t.name, t.name),
            str(t.clients),
            str(t.bought_again),
            f"{_v(t.coefficient)}{mark}",
        )
    console.print(tenure)
