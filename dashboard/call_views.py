"""Call recordings: streamed to the audio player (with ranges) for those allowed to listen."""

from __future__ import annotations

import logging

from aiohttp import web

from dashboard.context import current_session, deps
from dashboard.paging import parse_id
from dashboard.roles import can_listen
from dashboard.security import require
from povtor.errors import PovtorError

log = logging.getLogger(__name__)


@require(can_listen)
async def recording(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    call_id = parse_id(request.match_info["call_id"])
    if d.calls is None or call_id is None:
        raise web.HTTPNotFound(text="Запись не найдена")
    call = await d.calls.get_call(call_id)
    try:
        path = await d.calls.recording_path(call_id) if call is not None else None
    except PovtorError as err:  # the recording storage (S3) is down: not our page's fault
        log.warning("recording of call #%d cannot be fetched: %s", call_id, err)
        raise web.HTTPServiceUnavailable(
            text="Запись временно недоступна: хранилище записей не отвечает. Попробуйте позже."
        ) from None
    if path is None or not path.is_file():
        raise web.HTTPNotFound(text="Запись не найдена")
    disposition = "attachment" if request.query.get("download") else "inline"
    log.info("recording of call #%d served to user #%d", call_id, current_session(request).user.id)
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "audio/wav",
            "Content-Disposition": f'{disposition}; filename="call-{call_id}.wav"',
        },
    )
