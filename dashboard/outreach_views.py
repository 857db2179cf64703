"""The outreach page: today's plan, campaigns waiting for approval, paused purposes, results
and the caps in force; approve/reject and pause/resume for admins and managers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from dashboard.context import Deps, current_session, deps, render
from dashboard.paging import parse_id
from dashboard.roles import can_write
from dashboard.security import require
from povtor.db import utcnow
from povtor.domain import Purpose
from povtor.ports import OutreachControl

log = logging.getLogger(__name__)
PLAN_SHOWN = 200
PURPOSE_RU = {
    Purpose.REORDER: "повторный заказ (реклама)",
    Purpose.NPS: "опрос NPS (сервис)",
    Purpose.WINBACK: "возврат клиента (реклама)",
}
CAMPAIGN_STATE_RU = {
    "pending": "ждёт одобрения",
    "auto": "ушла сама (меньше порога)",
    "approved": "одобрена",
    "rejected": "отклонена",
}
ACTION_RU = {
    "approve": "одобрил(а)",
    "reject": "отклонил(а)",
    "pause": "приостановил(а)",
    "resume": "возобновил(а)",
}
STATE_RU = {
    "planned": "запланирован",
    "retry_scheduled": "повтор",
    "claimed": "берётся в работу",
    "in_progress": "идёт",
    "pending_approval": "ждёт одобрения",
}


def _control(d: Deps) -> OutreachControl:
    if d.outreach is None:
        raise web.HTTPNotFound(text="Обзвон и рассылки не подключены к панели")
    return d.outreach


def local_time(at: datetime, tz_name: str) -> str:
    """The client's own wall-clock time of a contact: "14:05 (Asia/Yekaterinburg)"."""
    try:
        tz = ZoneInfo(tz_name)
    except (KeyError, ValueError):
        return at.strftime("%H:%M UTC")
    return at.astimezone(tz).strftime("%d.%m %H:%M")


async def outreach_page(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    control = _control(d)
    now = utcnow()
    local = now.astimezone(ZoneInfo(d.settings.default_timezone))
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    plan = list(await control.plan(day_start + timedelta(days=1), limit=PLAN_SHOWN))
    clients = await d.store.get_clients(sorted({p.client_id for p in plan}))
    campaigns = list(await control.campaigns())
    paused = await control.paused()
    results = await control.results(day_start)
    context = {
        "nav": "outreach",
        "plan": plan,
        "plan_full": len(plan) >= PLAN_SHOWN,
        "clients": clients,
        "local": {
            p.attempt_id: local_time(
                p.not_before, clients[p.client_id].timezone if p.client_id in clients else "UTC"
            )
            for p in plan
        },
        "campaigns": campaigns,
        "pending": [c for c in campaigns if c.state == "pending"],
        "purposes": [(p, PURPOSE_RU[p], paused.get(p)) for p in Purpose],
        "results": results,
        "caps": await control.caps(),
        "actions": await control.actions(),
        "purpose_ru": PURPOSE_RU,
        "campaign_state_ru": CAMPAIGN_STATE_RU,
        "action_ru": ACTION_RU,
        "state_ru": STATE_RU,
        "threshold": d.settings.outreach.approval_threshold,
        "done": request.query.get("done", "")[:32],
        "refresh_s": d.settings.dashboard.live_refresh_s,
        "shown_at": local.strftime("%H:%M:%S"),
    }
    return render(request, "outreach.html", context)


@require(can_write)
async def decide_campaign(request: web.Request) -> web.StreamResponse:
    """``/outreach/campaigns/{id}/approve`` or ``.../reject``."""
    control = _control(deps(request))
    user = current_session(request).user
    campaign_id = parse_id(request.match_info["campaign_id"])
    decision = request.match_info["decision"]
    if campaign_id is None or decision not in ("approve", "reject"):
        raise web.HTTPNotFound(text="Рассылка не найдена")
    try:
        await control.decide_campaign(campaign_id, approve=decision == "approve", by=user.login)
    except LookupError as err:
        raise web.HTTPConflict(text="Рассылка уже не ждёт решения") from err
    log.info("campaign #%d: %s by user #%d", campaign_id, decision, user.id)
    raise web.HTTPSeeOther(f"/outreach?done={decision}")


@require(can_write)
async def pause_purpose(request: web.Request) -> web.StreamResponse:
    """``/outreach/pause`` or ``/outreach/resume`` with ``purpose`` in the form."""
    control = _control(deps(request))
    user = current_session(request).user
    form = await request.post()
    try:
        purpose = Purpose(str(form.get("purpose", "")))
    except ValueError as err:
        raise web.HTTPNotFound(text="Нет такой цели обращений") from err
    pause = request.match_info["action"] == "pause"
    await control.set_paused(purpose, pause, by=user.login)
    raise web.HTTPSeeOther(f"/outreach?done={'pause' if pause else 'resume'}")
