"""The CRM sync page: how the push to Bitrix24 / amoCRM goes, what failed, and "try again"."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from aiohttp import web

from dashboard.context import Deps, current_session, deps, render
from dashboard.paging import parse_id
from dashboard.roles import can_write
from dashboard.security import require
from povtor.db import utcnow
from povtor.ports import CrmSyncSummary

log = logging.getLogger(__name__)
SUMMARY_TIMEOUT_S = 3.0
CONNECTOR_RU = {"bitrix24": "Битрикс24", "amocrm": "amoCRM"}
KIND_RU = {
    "outcome": "итог обращения",
    "nps": "оценка NPS",
    "complaint": "жалоба",
    "task": "задача",
    "task_update": "изменение задачи",
    "opt_out": "отказ от контактов",
    "call": "звонок",
    "message_in": "сообщение клиента",
    "note": "заметка",
}
STATE_RU = {
    "pending": "в очереди",
    "sending": "отправляются",
    "done": "переданы",
    "failed": "с ошибкой",
}


def age_ru(since: datetime | None, now: datetime) -> str:
    """How long ago, roughly: "меньше минуты", "12 мин", "3 ч 5 мин", "2 дн 4 ч"."""
    if since is None:
        return "—"
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 1:
        return "меньше минуты"
    if minutes < 60:
        return f"{minutes} мин"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} ч {minutes} мин" if minutes else f"{hours} ч"
    days, hours = divmod(hours, 24)
    return f"{days} дн {hours} ч" if hours else f"{days} дн"


async def crm_summary(d: Deps) -> CrmSyncSummary | None:
    """The summary for the overview's warning; None when the sync is off or cannot be read."""
    if d.crm is None:
        return None
    try:
        async with asyncio.timeout(SUMMARY_TIMEOUT_S):
            summary = await d.crm.summary()
    except Exception as err:  # the overview still renders; the CRM page shows the error
        log.warning("CRM sync summary failed: %s", type(err).__name__)
        return None
    return summary if summary.connector is not None else None


async def crm_page(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    summary = None if d.crm is None else await d.crm.summary()
    if d.crm is None or summary is None or summary.connector is None:
        return render(request, "crm.html", {"nav": "crm", "summary": None})
    before = parse_id(request.query.get("before"))
    size = d.settings.dashboard.page_size
    rows = await d.crm.failures(limit=size + 1, before_id=before)
    failures, next_url = list(rows[:size]), None
    if len(rows) > size:
        next_url = f"/crm?before={failures[-1].id}"
    clients = await d.store.get_clients(sorted({f.client_id for f in failures}))
    retried = request.query.get("retried", "")
    now = utcnow()
    context = {
        "nav": "crm",
        "summary": summary,
        "connector_ru": CONNECTOR_RU.get(summary.connector, summary.connector),
        "states": [(STATE_RU[s], summary.counts.get(s, 0), s) for s in STATE_RU],
        "oldest_pending_age": age_ru(summary.oldest_pending_at, now),
        "last_pushed_age": age_ru(summary.last_pushed_at, now),
        "failures": failures,
        "clients": clients,
        "kind_ru": KIND_RU,
        "next_url": next_url,
        "first_url": "/crm" if before else None,
        "retried": int(retried) if retried.isdigit() and len(retried) < 10 else None,
    }
    return render(request, "crm.html", context)


@require(can_write)
async def crm_retry(request: web.Request) -> web.StreamResponse:
    """One failed push (``event_id``) or every one (``all``) back in the queue."""
    d = deps(request)
    user = current_session(request).user
    if d.crm is None:
        raise web.HTTPNotFound(text="Синхронизация с CRM не настроена")
    form = await request.post()
    if form.get("all"):
        count = await d.crm.retry(None)
    else:
        event_id = parse_id(str(form.get("event_id", "")))
        if event_id is None:
            raise web.HTTPNotFound(text="Событие не найдено")
        count = await d.crm.retry([event_id])
    log.info("CRM pushes queued again by user #%d: %d", user.id, count)
    raise web.HTTPSeeOther(f"/crm?retried={count}")
