"""One NPS answer: the score, the reason and the client's words, the call it was given in (its
recording beside its dialogue) and the follow-up tasks since."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from dashboard.context import current_session, deps, render
from dashboard.paging import parse_id
from dashboard.roles import can_listen
from dashboard.shared_pages import shared_page
from povtor.domain import ChannelKind, NpsResponse, TaskStatus
from povtor.ports import CallView

CALL_WINDOW = timedelta(hours=2)  # the answer is recorded as the call ends
CALLS_SEARCHED = 20


def call_of(answer: NpsResponse, calls: list[CallView]) -> CallView | None:
    """The client's call the answer was given in: the latest started before the answer, within
    ``CALL_WINDOW`` (a call answer is recorded when its call ends)."""
    if answer.channel is not ChannelKind.CALL:
        return None
    before = [c for c in calls if c.started_at <= answer.answered_at <= c.started_at + CALL_WINDOW]
    return max(before, key=lambda c: c.started_at, default=None)


@shared_page()
async def answer_page(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    role = current_session(request).user.role
    answer_id = parse_id(request.match_info["answer_id"])
    answer = None
    if answer_id is not None and d.retention is not None:
        answer = await d.retention.nps_answer(answer_id)
    if answer is None:
        raise web.HTTPNotFound(text="Ответ не найден")
    # the client and its tasks in one read (NotFound -> 404 page)
    card = await d.store.client_card(answer.client_id, events=0, orders=0, answers=0)
    client = card.client
    calls = (
        [] if d.calls is None else list(await d.calls.calls_for_client(client.id, CALLS_SEARCHED))
    )
    since = answer.answered_at - timedelta(minutes=1)
    tasks = [t for t in card.tasks if t.created_at is not None and t.created_at >= since]
    context = {
        "nav": "nps",
        "answer": answer,
        "client": client,
        "call": call_of(answer, calls),
        "tasks": tasks,
        "open_statuses": (TaskStatus.OPEN, TaskStatus.IN_PROGRESS),
        "can_listen": can_listen(role),
        "transcription_off": d.transcription_off,
    }
    return render(request, "answer.html", context)
