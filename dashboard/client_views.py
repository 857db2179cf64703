"""Clients: search with keyset pages, and the client card (orders, timeline, calls, tasks)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from dashboard.client_list import (
    AGES,
    CHANNELS,
    CONSENTS,
    NPS_GROUPS,
    OPT_OUTS,
    SEGMENTS,
    parse_client_filters,
)
from dashboard.consent_views import consent_rows
from dashboard.context import current_session, deps, render
from dashboard.export import csv_bytes, xlsx_bytes
from dashboard.formatting import SEGMENT_RU, mask_phones_in_text, show_phone
from dashboard.paging import parse_id
from dashboard.roles import Role, can_erase, can_listen, sees_full_phones
from dashboard.shared_pages import shared_page
from povtor.db import utcnow
from povtor.domain import Client
from povtor.ports import ClientSummary

log = logging.getLogger(__name__)
EXPORT_PAGE = 2000
EXPORT_MAX = 100_000
EXPORT_HEADER = (
    "id",
    "Код клиента",
    "Имя",
    "Телефоны",
    "Сегмент",
    "Заказов",
    "Выручка",
    "Последний заказ",
    "Последняя оценка",
    "Дата оценки",
    "Telegram",
    "Контакты",
)

ORDERS_SHOWN = 20
CALLS_SHOWN = 10
NPS_SHOWN = 10


@shared_page()
async def client_list(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    role = current_session(request).user.role
    if d.retention is None:
        return await _plain_search(request)
    where, kept = parse_client_filters(request.query, role, _tz(d), utcnow())
    after = parse_id(request.query.get("after"))
    size = d.settings.dashboard.page_size
    rows = await d.retention.list_clients(where, after_id=after, limit=size + 1)
    shown = list(rows[:size])
    next_url = None
    if len(rows) > size:
        next_url = "/clients?" + urlencode({**kept, "after": shown[-1].id})
    context = {
        "nav": "clients",
        "q": kept.get("q", ""),
        "kept": kept,
        "rows": shown,
        "phones": {r.id: ", ".join([show_phone(p, role) for p in r.phones]) for r in shown},
        "options": {
            "segment": ("Сегмент", SEGMENTS),
            "nps": ("Последняя оценка", NPS_GROUPS),
            "age": ("Последний заказ", {k: v[0] for k, v in AGES.items()}),
            "channel": ("Канал", CHANNELS),
            "consent": ("Согласие", CONSENTS),
            "optout": ("Контакты", OPT_OUTS),
        },
        "export_query": urlencode(kept),
        "next_url": next_url,
        "first_url": "/clients?" + urlencode(kept) if after else None,
    }
    return render(request, "clients.html", context)


async def client_export(request: web.Request) -> web.StreamResponse:
    """The whole filtered list (up to ``EXPORT_MAX`` clients) as CSV or XLSX."""
    d = deps(request)
    role = current_session(request).user.role
    fmt = request.match_info["fmt"]
    if d.retention is None or fmt not in ("csv", "xlsx"):
        raise web.HTTPNotFound(text="Выгрузка недоступна")
    where, _ = parse_client_filters(request.query, role, _tz(d), utcnow())
    rows: list[list[Any]] = []
    after: int | None = None
    while len(rows) < EXPORT_MAX:
        page = await d.retention.list_clients(where, after_id=after, limit=EXPORT_PAGE)
        rows.extend(_export_row(r, role, d) for r in page)
        if len(page) < EXPORT_PAGE:
            break
        after = page[-1].id
    rows = rows[:EXPORT_MAX]
    log.info("client list exported as %s by user #%d: %d rows", fmt, _user_id(request), len(rows))
    if fmt == "csv":
        body, ctype = csv_bytes(EXPORT_HEADER, rows), "text/csv; charset=utf-8"
    else:
        body = xlsx_bytes(EXPORT_HEADER, rows)
        ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    stamp = utcnow().astimezone(_tz(d)).strftime("%Y%m%d-%H%M")
    return web.Response(
        body=body,
        headers={
            "Content-Type": ctype,
            "Content-Disposition": f'attachment; filename="clients-{stamp}.{fmt}"',
        },
    )


def _export_row(r: ClientSummary, role: Role, d: Any) -> list[Any]:
    tz = _tz(d)
    return [
        r.id,
        r.external_id,
        r.name if sees_full_phones(role) else mask_phones_in_text(r.name),
        ", ".join(show_phone(p, role) for p in r.phones),
        SEGMENT_RU.get(r.segment, r.segment),
        r.orders,
        float(r.revenue),
        r.last_order_at.astimezone(tz).strftime("%Y-%m-%d") if r.last_order_at else "",
        r.last_score if r.last_score is not None else "",
        r.last_answered_at.astimezone(tz).strftime("%Y-%m-%d") if r.last_answered_at else "",
        "Telegram" if r.telegram_linked and r.telegram_reachable else "",
        "отказ" if r.opted_out else "",
    ]


def _user_id(request: web.Request) -> int:
    return current_session(request).user.id


def _tz(d: Any) -> ZoneInfo:
    return ZoneInfo(d.settings.default_timezone)


async def _plain_search(request: web.Request) -> web.StreamResponse:
    """Without the retention view (figures not connected): names, codes and phones only."""
    d = deps(request)
    role = current_session(request).user.role
    q = request.query.get("q", "").strip()[:100]
    after = parse_id(request.query.get("after"))
    size = d.settings.dashboard.page_size
    probing = not sees_full_phones(role) and sum(ch.isdigit() for ch in q) >= 4
    # no phone digits for those who see masked numbers: the search would reveal them
    found = [] if probing else await d.store.search_clients(q, after_id=after, limit=size + 1)
    shown = [_summary(c) for c in found[:size]]
    next_url = None
    if len(found) > size:
        next_url = "/clients?" + urlencode({"q": q, "after": shown[-1].id})
    context = {
        "nav": "clients",
        "q": q,
        "kept": {"q": q} if q else {},
        "rows": shown,
        "phones": {r.id: ", ".join([show_phone(p, role) for p in r.phones]) for r in shown},
        "options": {},
        "export_query": None,
        "next_url": next_url,
        "first_url": "/clients?" + urlencode({"q": q}) if after else None,
    }
    return render(request, "clients.html", context)


def _summary(c: Client) -> ClientSummary:
    """A found client as a row of the list, without the figures (not connected)."""
    return ClientSummary(
        id=c.id,
        external_id=c.external_id,
        name=c.name,
        segment="",
        phones=c.phones,
        telegram_linked=c.telegram_chat_id is not None,
        telegram_reachable=c.telegram_reachable,
        opted_out=c.opted_out,
    )


@shared_page()
async def client_card(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    role = current_session(request).user.role
    client_id = parse_id(request.match_info["client_id"])
    if client_id is None:
        raise web.HTTPNotFound(text="Клиент не найден")
    before = parse_id(request.query.get("before"))
    size = d.settings.dashboard.page_size
    # one read on one connection (NotFound -> 404 page)
    card = await d.store.client_card(
        client_id, before_id=before, events=size + 1, orders=ORDERS_SHOWN, answers=NPS_SHOWN
    )
    client, events = card.client, card.timeline
    timeline, next_url = list(events[:size]), None
    if len(events) > size:
        next_url = f"/clients/{client_id}?before={timeline[-1].id}#timeline"
    calls = [] if d.calls is None else list(await d.calls.calls_for_client(client_id, CALLS_SHOWN))
    context = {
        "nav": "clients",
        "client": client,
        "phones": [show_phone(p, role) for p in client.phones],
        "orders": card.orders,
        "timeline": timeline,
        "next_url": next_url,
        "first_url": f"/clients/{client_id}#timeline" if before else None,
        "tasks": card.tasks,
        "answers": card.answers,
        "calls": calls,
        "calls_connected": d.calls is not None,
        "can_listen": can_listen(role),
        "can_erase": d.erasure is not None and can_erase(role),
        "transcription_off": d.transcription_off,
        "consent_rows": consent_rows(client),
    }
    return render(request, "client.html", context)
