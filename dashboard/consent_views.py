"""A client's consents on the client card: shown per channel and kind, changed by a manager
(the change and who made it go into the client's timeline)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from dashboard.context import current_session, deps
from dashboard.paging import parse_id
from dashboard.roles import can_write
from dashboard.security import require
from povtor.domain import Client, ConsentChannel, ContactKind

log = logging.getLogger(__name__)
CHANNELS = (ConsentChannel.CALL, ConsentChannel.TELEGRAM)
KIND_RU = {ContactKind.SERVICE: "сервисные (NPS)", ContactKind.ADVERTISING: "реклама"}
CHANNEL_RU = {ConsentChannel.CALL: "звонки", ConsentChannel.TELEGRAM: "Telegram"}


def consent_rows(client: Client) -> list[dict[str, Any]]:
    """One row per channel and kind: given, refused or not recorded (with source and date)."""
    rows = []
    for kind in ContactKind:
        for channel in CHANNELS:
            c = client.consent_for(channel, kind)
            rows.append(
                {
                    "channel": channel.value,
                    "kind": kind.value,
                    "label": f"{KIND_RU[kind]}: {CHANNEL_RU[channel]}",
                    "granted": None if c is None else c.granted,
                    "source": None if c is None else c.source,
                    "at": None if c is None else c.at,
                }
            )
    return rows


@require(can_write)
async def set_consent(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    user = current_session(request).user
    client_id = parse_id(request.match_info["client_id"])
    form = await request.post()
    try:
        channel = ConsentChannel(str(form.get("channel", "")))
        kind = ContactKind(str(form.get("kind", "")))
    except ValueError as err:
        raise web.HTTPBadRequest(text="Неизвестный канал или вид согласия") from err
    granted = form.get("granted")
    if client_id is None or granted not in ("1", "0"):
        raise web.HTTPBadRequest(text="Нужно указать: согласие дано или нет")
    await d.store.get_client(client_id)  # NotFound -> 404 page
    await d.store.set_consent(
        client_id, channel, granted == "1", source="dashboard", kind=kind, by=user.login
    )
    log.info("consent %s/%s of client #%d changed by user #%d", kind, channel, client_id, user.id)
    raise web.HTTPSeeOther(f"/clients/{client_id}#consent")
