"""Erasing a client's personal data on their request (152-FZ) from the client card: admins
only, with a confirmation box; the result page says what each part removed, or that a part
failed and the worker will finish it."""

from __future__ import annotations

import logging

from aiohttp import web

from dashboard.context import current_session, deps, render
from dashboard.paging import parse_id
from dashboard.roles import can_erase
from dashboard.security import require
from povtor.errors import InvalidInput

log = logging.getLogger(__name__)
PART_RU = {
    "outreach": "контакты и попытки",
    "bot": "Telegram",
    "voice": "звонки и записи",
    "history": "история клиента",
}


@require(can_erase)
async def erase_client(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    user = current_session(request).user
    client_id = parse_id(request.match_info["client_id"])
    if d.erasure is None or client_id is None:
        raise web.HTTPNotFound(text="Клиент не найден")
    form = await request.post()
    if form.get("confirm") != "1":
        raise InvalidInput("Подтвердите, что клиент просил удалить его данные")
    erased = await d.erasure.erase_client(client_id, by=f"dashboard:{user.login}")  # NotFound: 404
    log.info(
        "erasure request #%d of client #%d by user #%d: %s",
        erased.id,
        client_id,
        user.id,
        erased.state,
    )
    context = {
        "nav": "clients",
        "erased": erased,
        "parts": [(PART_RU.get(p, p), sum(c.values())) for p, c in erased.removed.items()],
    }
    return render(request, "erased.html", context)
