"""The overview page: NPS now and its trend, groups, response rate, open tasks, detractors."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from dashboard.context import Deps, deps, render
from dashboard.crm_views import crm_summary
from povtor.db import utcnow
from povtor.domain import NpsGroup, NpsSummary, TaskStatus
from povtor.ports import NpsQuery

log = logging.getLogger(__name__)
TREND_MONTHS = 6
CHECK_TIMEOUT_S = 3.0
MONTHS_RU = (
    "янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек",
)  # fmt: skip


def month_starts(now: datetime, tz: Any, count: int) -> list[datetime]:
    """Starts (UTC) of the last ``count`` calendar months in the business's zone, oldest first."""
    local = now.astimezone(tz)
    year, month = local.year, local.month
    starts = []
    for _ in range(count):
        starts.append(datetime(year, month, 1, tzinfo=tz).astimezone(UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


async def trend(d: Deps, now: datetime) -> list[tuple[str, NpsSummary]]:
    tz = d_tz(d)
    starts = month_starts(now, tz, TREND_MONTHS)
    ends = [*starts[1:], now]
    summaries = await asyncio.gather(
        *(d.reports.nps(s, e) for s, e in zip(starts, ends, strict=True))
    )
    labels = [f"{MONTHS_RU[s.astimezone(tz).month - 1]} {s.astimezone(tz):%y}" for s in starts]
    return list(zip(labels, summaries, strict=True))


def d_tz(d: Deps) -> ZoneInfo:
    return ZoneInfo(d.settings.default_timezone)


async def status_checks(d: Deps) -> list[tuple[str, bool, str]]:
    """(what, ok, detail) for the status widget; each check bounded in time."""
    checks: list[tuple[str, bool, str]] = []
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await d.store.count_tasks([TaskStatus.OPEN])
        checks.append(("База данных", True, "доступна"))
    except Exception as err:
        log.warning("status check of the store failed: %s", type(err).__name__)
        checks.append(("База данных", False, "недоступна"))
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            now = utcnow()
            await d.reports.nps(now - timedelta(days=1), now)
        checks.append(("Отчёты", True, "работают"))
    except Exception as err:
        log.warning("status check of reports failed: %s", type(err).__name__)
        checks.append(("Отчёты", False, "не отвечают"))
    if d.calls is None:
        checks.append(("Звонки и записи", False, "не подключены"))
    else:
        checks.append(("Звонки и записи", True, "подключены"))
    return checks


PART_NAMES = {"telegram": "Telegram", "sip": "Телефония"}
STATE_TEXTS = {
    "unreachable": "нет связи; сообщения ждут и уйдут, когда связь вернётся",
    "token_refused": "токен бота отклонён; сообщения не отправляются, нужен верный "
    "POVTOR_TELEGRAM_BOT_TOKEN и перезапуск",
    "conflict": "бот уже получает обновления в другой программе или через вебхук",
    "starting": "подключается",
}


def channel_problems(d: Deps) -> list[tuple[str, str, str]]:
    """(part, what managers read, the technical reason) of each channel that does not work."""
    if d.health is None:
        return []
    return [
        (PART_NAMES.get(s.part, s.part), STATE_TEXTS.get(s.state, "не работает"), s.reason)
        for s in d.health.statuses()
        if not s.ok
    ]


async def overview(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    now = utcnow()
    month_ago = now - timedelta(days=30)
    current, months, open_tasks, in_progress, detractors, (checks, crm) = await asyncio.gather(
        d.reports.nps(month_ago, now),
        trend(d, now),
        d.store.count_tasks([TaskStatus.OPEN]),
        d.store.count_tasks([TaskStatus.IN_PROGRESS]),
        d.store.list_nps_answers(NpsQuery(group=NpsGroup.DETRACTOR, since=month_ago), limit=10),
        asyncio.gather(status_checks(d), crm_summary(d)),
    )
    clients = await d.store.get_clients([a.client_id for a in detractors])
    context = {
        "nav": "overview",
        "current": current,
        "months": months,
        "open_tasks": open_tasks,
        "in_progress": in_progress,
        "detractors": detractors,
        "clients": clients,
        "checks": checks,
        "started_at": d.started_at,
        "crm_failed": crm.counts.get("failed", 0) if crm is not None else 0,
        "channel_problems": channel_problems(d),
    }
    return render(request, "overview.html", context)
