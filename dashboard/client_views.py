"""Clients: search with keyset pages, and the client card (orders, timeline, calls, tasks)."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from dashboard.consent_views import consent_rows
from dashboard.context import current_session, deps, render
from dashboard.formatting import show_phone
from dashboard.paging import parse_id
from dashboard.roles import can_listen
from povtor.ports import NpsQuery

ORDERS_SHOWN = 20
CALLS_SHOWN = 10
NPS_SHOWN = 10


async def client_list(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    role = current_session(request).user.role
    q = request.query.get("q", "").strip()[:100]
    after = parse_id(request.query.get("after"))
    size = d.settings.dashboard.page_size
    rows = await d.store.search_clients(q, after_id=after, limit=size + 1)
    clients = list(rows[:size])
    next_url = None
    if len(rows) > size:
        next_url = "/clients?" + urlencode({"q": q, "after": clients[-1].id})
    context = {
        "nav": "clients",
        "q": q,
        "clients": clients,
        "phones": {c.id: [show_phone(p, role) for p in c.phones] for c in clients},
        "next_url": next_url,
        "first_url": "/clients?" + urlencode({"q": q}) if after else None,
    }
    return render(request, "clients.html", context)


async def client_card(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    role = current_session(request).user.role
    client_id = parse_id(request.match_info["client_id"])
    if client_id is None:
        raise web.HTTPNotFound(text="Клиент не найден")
    client = await d.store.get_client(client_id)  # NotFound -> 404 page
    before = parse_id(request.query.get("before"))
    size = d.settings.dashboard.page_size
    events = await d.store.timeline(client_id, before_id=before, limit=size + 1)
    timeline, next_url = list(events[:size]), None
    if len(events) > size:
        next_url = f"/clients/{client_id}?before={timeline[-1].id}#timeline"
    orders = await d.store.list_orders(client_id, limit=ORDERS_SHOWN)
    tasks = await d.store.list_client_tasks(client_id)
    answers = await d.store.list_nps_answers(NpsQuery(client_id=client_id), limit=NPS_SHOWN)
    calls = [] if d.calls is None else list(await d.calls.calls_for_client(client_id, CALLS_SHOWN))
    context = {
        "nav": "clients",
        "client": client,
        "phones": [show_phone(p, role) for p in client.phones],
        "orders": orders,
        "timeline": timeline,
        "next_url": next_url,
        "first_url": f"/clients/{client_id}#timeline" if before else None,
        "tasks": tasks,
        "answers": answers,
        "calls": calls,
        "calls_connected": d.calls is not None,
        "can_listen": can_listen(role),
        "consent_rows": consent_rows(client),
    }
    return render(request, "client.html", context)
