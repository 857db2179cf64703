"""Manager commands: /nps (this week's figures) and /tasks (open tasks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.alert_store import AlertStore
from bot.records import AlertStatus
from bot.texts import Texts
from povtor.domain import TaskStatus
from povtor.ports import HistoryStore, Reports

_STATUS_RU = {
    AlertStatus.OPEN: "новое",
    AlertStatus.TAKEN: "в работе",
    AlertStatus.RESOLVED: "решено",
}


def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of the current week."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


async def nps_text(reports: Reports, alert_store: AlertStore, texts: Texts, now: datetime) -> str:
    start = week_start(now)
    summary = await reports.nps(start, now)
    alerts = await alert_store.alerts_since(start, limit=10)
    answers = [
        "• "
        + " — ".join(line.strip("⚠️ ") for line in a.text.splitlines()[:2])
        + f" [{_STATUS_RU[a.status]}]"
        for a in alerts
    ]
    return texts(
        "nps_report",
        start=f"{start:%d.%m}",
        end=f"{now:%d.%m}",
        nps="—" if summary.nps is None else f"{summary.nps:+.1f}",
        promoters=summary.promoters,
        passives=summary.passives,
        detractors=summary.detractors,
        responses=summary.responses,
        asked=summary.asked,
        answers=answers,
    )


async def tasks_text(store: HistoryStore, texts: Texts, limit: int = 20) -> str:
    tasks = [
        *await store.list_tasks(status=TaskStatus.OPEN, limit=limit),
        *await store.list_tasks(status=TaskStatus.IN_PROGRESS, limit=limit),
    ]
    if not tasks:
        return texts("tasks_none")
    tasks.sort(key=lambda t: (t.due_at, t.id))
    lines = [
        f"#{t.id} до {t.due_at:%d.%m %H:%M} — {t.title}"
        + (f" ({t.assignee})" if t.assignee else "")
        for t in tasks[:limit]
    ]
    return texts("tasks_report", count=len(tasks), tasks=lines)
