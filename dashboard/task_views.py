"""Tasks: the list, take, mark done, follow-ups with a due date; every step in the timeline."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from dashboard.context import current_session, deps, render, safe_next
from dashboard.paging import nps_cursor_text, parse_id, parse_nps_cursor
from dashboard.roles import can_write
from dashboard.security import require
from dashboard.shared_pages import shared_page
from dashboard.users import Session
from povtor.db import utcnow
from povtor.domain import EventKind, Task, TaskStatus
from povtor.errors import InvalidInput
from povtor.ports import NewEvent, NewTask, NpsCursor, Timeline

log = logging.getLogger(__name__)
VIEWS = {
    "open": "Открытые",
    "in_progress": "В работе",
    "mine": "Мои",
    "done": "Выполненные",
}
TASKS_SHOWN = 200
FOLLOW_UP_HOUR = time(10, 0)  # a follow-up "on a day" is due at 10:00 local time
TITLE_MAX = 300


def _own_list(request: web.Request, session: Session) -> str | None:
    """ "Mine" is each user's own list: shared only between requests of one user."""
    return session.user.login if request.query.get("view") == "mine" else None


@shared_page(vary=_own_list)
async def task_list(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    user = current_session(request).user
    view = request.query.get("view", "open")
    if view not in VIEWS:
        view = "open"
    # keyset pages by (due_at, id), in the NPS list's cursor text
    cursor = parse_nps_cursor(request.query.get("after"))
    after = None if cursor is None else (cursor.answered_at, cursor.id)
    size = min(d.settings.dashboard.page_size, TASKS_SHOWN)
    # the page and its clients' names in one read
    if view == "mine":
        rows, names = await d.store.list_tasks_named(
            status=TaskStatus.IN_PROGRESS, assignee=user.login, limit=size + 1, after=after
        )
    else:
        rows, names = await d.store.list_tasks_named(
            status=TaskStatus(view), limit=size + 1, after=after
        )
    tasks = list(rows[:size])
    next_url = None
    if len(rows) > size:
        last = nps_cursor_text(NpsCursor(tasks[-1].due_at, tasks[-1].id))
        next_url = "/tasks?" + urlencode({"view": view, "after": last})
    context = {
        "next_url": next_url,
        "first_url": "/tasks?" + urlencode({"view": view}) if after else None,
        "nav": "tasks",
        "view": view,
        "views": VIEWS,
        "tasks": tasks,
        "names": names,
        "now": utcnow(),
        "default_due": default_due(d.settings.default_timezone),
    }
    return render(request, "tasks.html", context)


def default_due(timezone: str) -> str:
    """Tomorrow in the business's zone, as an <input type=date> value."""
    return (utcnow().astimezone(ZoneInfo(timezone)).date() + timedelta(days=1)).isoformat()


def parse_due(text: str, timezone: str) -> datetime:
    """A date from the form -> that day at 10:00 local time, in UTC; never in the past."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError as err:
        raise InvalidInput("Укажите срок в виде даты") from err
    tz = ZoneInfo(timezone)
    if day < utcnow().astimezone(tz).date():
        raise InvalidInput("Срок не может быть в прошлом")
    return datetime.combine(day, FOLLOW_UP_HOUR, tz).astimezone(ZoneInfo("UTC"))


def parse_title(value: Any) -> str:
    title = str(value or "").strip()
    if not title:
        raise InvalidInput("Опишите, что нужно сделать")
    return title[:TITLE_MAX]


async def _log_step(store: Timeline, task: Task, summary: str, data: dict[str, Any]) -> None:
    if task.client_id is not None:
        await store.append_event(
            NewEvent(
                client_id=task.client_id,
                kind=EventKind.TASK,
                summary=summary,
                ref=f"task:{task.id}",
                data={"task_id": task.id, **data},
            )
        )


def _task_id(request: web.Request) -> int:
    task_id = parse_id(request.match_info["task_id"])
    if task_id is None:
        raise web.HTTPNotFound(text="Задача не найдена")
    return task_id


@require(can_write)
async def take_task(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    user = current_session(request).user
    form = await request.post()
    task = await d.store.get_task(_task_id(request))
    if task.status is not TaskStatus.OPEN:
        raise InvalidInput("Задачу уже взяли или закрыли")
    task = await d.store.update_task(task.id, status=TaskStatus.IN_PROGRESS, assignee=user.login)
    await _log_step(
        d.store, task, f"Задача «{task.title}» взята в работу: {user.login}", {"action": "taken"}
    )
    log.info("task #%d taken by user #%d", task.id, user.id)
    raise web.HTTPSeeOther(safe_next(str(form.get("next", "")), "/tasks"))


@require(can_write)
async def finish_task(request: web.Request) -> web.StreamResponse:
    """Marks the task done; with a follow-up title and date, opens the next task (closed loop)."""
    d = deps(request)
    user = current_session(request).user
    form = await request.post()
    task = await d.store.get_task(_task_id(request))
    if task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
        raise InvalidInput("Задача уже закрыта")
    note = str(form.get("note", "")).strip()[:2000] or None
    follow_title = str(form.get("follow_up_title", "")).strip()
    follow_due = (
        parse_due(str(form.get("follow_up_due", "")), d.settings.default_timezone)
        if follow_title
        else None
    )
    task = await d.store.update_task(
        task.id, status=TaskStatus.DONE, assignee=task.assignee or user.login, note=note
    )
    summary = f"Задача «{task.title}» выполнена: {user.login}"
    await _log_step(d.store, task, summary + (f". {note}" if note else ""), {"action": "done"})
    if follow_due is not None:
        await d.store.create_task(
            NewTask(
                client_id=task.client_id,
                kind="follow_up",
                title=parse_title(follow_title),
                due_at=follow_due,
                assignee=user.login,
                source_ref=f"task:{task.id}",
            )
        )
    log.info("task #%d done by user #%d", task.id, user.id)
    raise web.HTTPSeeOther(safe_next(str(form.get("next", "")), "/tasks"))


@require(can_write)
async def create_follow_up(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    user = current_session(request).user
    client_id = parse_id(request.match_info["client_id"])
    if client_id is None:
        raise web.HTTPNotFound(text="Клиент не найден")
    await d.store.get_client(client_id)
    form = await request.post()
    task = await d.store.create_task(
        NewTask(
            client_id=client_id,
            kind="follow_up",
            title=parse_title(form.get("title")),
            due_at=parse_due(str(form.get("due", "")), d.settings.default_timezone),
            assignee=user.login,
        )
    )
    log.info("follow-up task #%d created by user #%d", task.id, user.id)
    raise web.HTTPSeeOther(f"/clients/{client_id}#tasks")
