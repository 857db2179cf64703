"""The overview page: NPS now and its trend as a chart, detractors to act on, tasks (overdue
too), today's contacts, and the health of channels, transcription and the CRM sync."""

from __future__ import annotations

import asyncio
import logging
import time as clock
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from dashboard.charts import TrendPoint, trend_chart
from dashboard.context import Deps, deps, render
from dashboard.crm_views import crm_summary
from dashboard.periods import month_buckets, week_buckets
from dashboard.shared_pages import shared_page
from povtor.db import utcnow
from povtor.domain import NpsGroup, TaskStatus
from povtor.health import ComponentHealth
from povtor.ports import NpsQuery, TaskCounts

log = logging.getLogger(__name__)
TREND_MONTHS = 12
TREND_WEEKS = 12
CHECK_TIMEOUT_S = 3.0
DETRACTORS_SHOWN = 10
Check = tuple[str, bool, str]


def d_tz(d: Deps) -> ZoneInfo:
    return ZoneInfo(d.settings.default_timezone)


def local_time(d: Deps, moment: datetime | None) -> str:
    """``ДД.ММ в ЧЧ:ММ`` in the business's time zone ("" for None)."""
    if moment is None:
        return ""
    local = moment.astimezone(d_tz(d))
    return f"{local:%d.%m} в {local:%H:%M}"


_STATE_RU = {"degraded": "работает с перебоями", "down": "не работает"}


async def trend(
    d: Deps, now: datetime, by: str
) -> tuple[list[tuple[str, TrendPoint]], datetime | None]:
    """Answers per group by week or month (the score bounds of ``povtor report``'s NPS), and
    up to when the stored days counted them (None: all counted now)."""
    tz = d_tz(d)
    buckets = (
        week_buckets(now, tz, TREND_WEEKS)
        if by == "week"
        else month_buckets(now, tz, TREND_MONTHS)
    )
    through = None
    if d.retention is not None:
        counts = await d.retention.nps_counts([s for _, s, _ in buckets] + [now])
        through = await d.retention.figures_through()
        groups = [
            (c[NpsGroup.PROMOTER], c[NpsGroup.PASSIVE], c[NpsGroup.DETRACTOR]) for c in counts
        ]
    else:
        summaries = await asyncio.gather(*(d.reports.nps(s, e) for _, s, e in buckets))
        groups = [(s.promoters, s.passives, s.detractors) for s in summaries]
    points = [
        (label, TrendPoint(label, *g)) for (label, _, _), g in zip(buckets, groups, strict=True)
    ]
    return points, through


async def _trend_drawn(
    d: Deps, now: datetime, by: str
) -> tuple[list[tuple[str, TrendPoint]], datetime | None, str]:
    """The trend with its chart drawn (the chart is reused with the figures it shows)."""
    buckets, through = await trend(d, now, by)
    return buckets, through, trend_chart([point for _, point in buckets])


async def status_checks(d: Deps, answered_in: float) -> list[Check]:
    """(what, ok, detail) for the status widget; a problem says what is wrong and, where it
    can, what to do. The database is judged by how long the page's own reads took
    (``answered_in`` seconds; had it not answered, there would be no page): no extra read."""
    checks: list[Check] = []
    if answered_in <= CHECK_TIMEOUT_S:
        checks.append(("База данных", True, "доступна"))
    else:
        log.warning("the store answered the overview in %.1f s", answered_in)
        checks.append(("База данных", False, f"отвечает медленно: {answered_in:.0f} с"))
    s = d.settings
    if s.telegram.enabled:
        checks.append(("Telegram-бот", True, "включён"))
    else:
        checks.append(("Telegram-бот", False, "выключен: не задан токен бота"))
    if s.sip.enabled and d.calls is not None:
        checks.append(("Звонки", True, "включены"))
    elif s.sip.enabled:
        checks.append(("Звонки", False, "включены, но история звонков не подключена"))
    else:
        checks.append(("Звонки", False, "выключены (POVTOR_SIP_ENABLED)"))
    if d.transcription_off:
        checks.append(("Расшифровка звонков", False, f"выключена: {d.transcription_off}"))
    else:
        checks.append(("Расшифровка звонков", True, "работает"))
    # what the worker's parts reported (a trunk down, no registration): as the worker published
    # it when several processes serve the dashboard, else from this process's own board
    problems: Sequence[ComponentHealth] = []
    if d.shared_health is not None:
        problems = await d.shared_health.problems()
    elif d.health is not None:
        problems = d.health.problems()
    for problem in problems:  # the reason stays technical: for whoever fixes it
        state = _STATE_RU.get(problem.state.value, problem.state.value)
        checks.append((problem.name, False, f"{state} ({problem.reason})"))
    return checks


async def crm_check(d: Deps) -> tuple[Check, int]:
    crm = await crm_summary(d)
    if crm is None or crm.connector is None:
        return ("Синхронизация с CRM", False, "не настроена (POVTOR_CRM_KIND)"), 0
    failed = crm.counts.get("failed", 0)
    if failed:
        return ("Синхронизация с CRM", False, f"есть неотправленные события: {failed}"), failed
    if crm.retrying:
        detail = f"CRM не отвечает, повторяем: {crm.retrying}"
        return ("Синхронизация с CRM", False, detail), 0
    return ("Синхронизация с CRM", True, f"{crm.connector}: работает"), 0


async def task_counts(d: Deps, now: datetime) -> TaskCounts:
    if d.retention is not None:
        return await d.retention.task_counts(now)
    open_, in_progress = await asyncio.gather(
        d.store.count_tasks([TaskStatus.OPEN]), d.store.count_tasks([TaskStatus.IN_PROGRESS])
    )
    return TaskCounts(open=open_, in_progress=in_progress, overdue=0)


async def today_contacts(d: Deps, now: datetime) -> dict[str, int] | None:
    if d.retention is None:
        return None
    midnight = datetime.combine(now.astimezone(d_tz(d)).date(), time(), d_tz(d))
    return dict(await d.retention.outreach(midnight, now))


@shared_page()
async def overview(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    now = utcnow()
    by = "week" if request.query.get("trend") == "week" else "month"
    month_ago = now - timedelta(days=30)
    started = clock.monotonic()
    current, (buckets, through, trend_svg), tasks, listed = await asyncio.gather(
        d.recent.get(("nps-30-days",), lambda: d.reports.nps(month_ago, now)),
        d.recent.get(("trend", by), lambda: _trend_drawn(d, now, by)),
        task_counts(d, now),
        d.store.list_nps_answers_named(
            NpsQuery(group=NpsGroup.DETRACTOR, since=month_ago), limit=DETRACTORS_SHOWN * 3
        ),
    )
    detractors, names = listed
    answered_in = clock.monotonic() - started
    checks, (crm, crm_failed), today = await asyncio.gather(
        status_checks(d, answered_in), crm_check(d), today_contacts(d, now)
    )
    needing, handled = await _needing_action(d, detractors)
    context: dict[str, Any] = {
        "nav": "overview",
        "current": current,
        "trend_by": by,
        "trend_svg": trend_svg,
        "buckets": buckets,
        "stored_through": local_time(d, through),
        "tasks": tasks,
        "detractors": needing[:DETRACTORS_SHOWN],
        "handled": handled,
        "names": names,
        "checks": [*checks, crm],
        "today": today,
        "started_at": d.started_at,
        "crm_failed": crm_failed,
    }
    return render(request, "overview.html", context)


async def _needing_action(d: Deps, answers: Any) -> tuple[list[Any], int]:
    """Detractors still to act on: no task of the client created since the answer has been
    done. Each comes with its open follow-up task, if any; also how many were handled."""
    needing, handled = [], 0
    by_client = list(dict.fromkeys(a.client_id for a in answers))
    client_tasks = await d.store.tasks_of_clients(by_client, limit=20)  # one read for all
    for a in answers:
        since = a.answered_at - timedelta(minutes=1)
        after = [t for t in client_tasks[a.client_id] if t.created_at and t.created_at >= since]
        if any(t.status is TaskStatus.DONE for t in after):
            handled += 1
            continue
        active = [t for t in after if t.status in (TaskStatus.OPEN, TaskStatus.IN_PROGRESS)]
        needing.append((a, active[0] if active else None))
    return needing, handled
