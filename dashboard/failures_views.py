"""The page of failures: the dead letters of every durable queue (CRM pushes, Telegram
messages, transcripts), with "try again" where the queue allows it."""

from __future__ import annotations

import logging

from aiohttp import web

from dashboard.context import current_session, deps, render
from dashboard.paging import parse_id
from dashboard.roles import can_write
from dashboard.security import require

log = logging.getLogger(__name__)
QUEUE_RU = {
    "crm": "Передача в CRM",
    "telegram": "Сообщения в Telegram",
    "transcripts": "Расшифровка записей",
}
SHOWN = 50


async def failures_page(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    sections = []
    for queue in d.dead_letters:
        letters = list(await queue.dead_letters(SHOWN))
        sections.append(
            {
                "name": queue.name,
                "title": QUEUE_RU.get(queue.name, queue.name),
                "retryable": queue.retryable,
                "letters": letters,
            }
        )
    retried = request.query.get("retried", "")
    context = {
        "nav": "failures",
        "sections": sections,
        "retried": int(retried) if retried.isdigit() and len(retried) < 10 else None,
    }
    return render(request, "failures.html", context)


@require(can_write)
async def failures_retry(request: web.Request) -> web.StreamResponse:
    """One dead letter (``id``) or every one (``all``) of a queue back in that queue."""
    d = deps(request)
    form = await request.post()
    queue = next((q for q in d.dead_letters if q.name == form.get("queue")), None)
    if queue is None or not queue.retryable:
        raise web.HTTPNotFound(text="Очередь не найдена или не повторяется отсюда")
    ids: list[int] = []
    if not form.get("all"):
        row_id = parse_id(str(form.get("id", "")))
        if row_id is None:
            raise web.HTTPNotFound(text="Запись не найдена")
        ids = [row_id]
    count = await queue.revive(ids)
    user = current_session(request).user
    log.info("%s dead letters queued again by user #%d: %d", queue.name, user.id, count)
    raise web.HTTPSeeOther(f"/failures?retried={count}")
