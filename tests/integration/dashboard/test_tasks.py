"""The closed loop of tasks: a manager takes, finishes and follows up; viewers only look."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

from crm_sync.history.store import ClientInput
from povtor.domain import EventKind, TaskStatus
from povtor.ports import NewTask
from tests.integration.dashboard.conftest import Dashboard, csrf_of

TASK_RE = re.compile(r'<tr data-task="(\d+)"')
NEXT_RE = re.compile(r'<a href="([^"]+)" rel="next">')


async def _task(dash: Dashboard) -> tuple[int, int]:
    client = await dash.store.create_client(ClientInput("C1", name="Иван Петров"))
    task = await dash.store.create_task(
        NewTask(client.id, "detractor", "Позвонить критику", datetime.now(UTC) + timedelta(1))
    )
    return client.id, task.id


async def test_viewer_sees_tasks_but_cannot_change_them(dash: Dashboard) -> None:
    client_id, task_id = await _task(dash)
    async with await dash.signed_in("vera") as http:
        async with http.get("/tasks") as page:
            html = await page.text()
            assert "Позвонить критику" in html
            assert "Взять в работу" not in html
            csrf = csrf_of(html)  # the logout form's token: valid, but the role is not
        for path, form in (
            (f"/tasks/{task_id}/take", {"_csrf": csrf}),
            (f"/tasks/{task_id}/done", {"_csrf": csrf}),
            (f"/clients/{client_id}/tasks", {"_csrf": csrf, "title": "x", "due": "2099-01-01"}),
        ):
            async with http.post(path, data=form, allow_redirects=False) as response:
                assert response.status == 403, path
    assert (await dash.store.get_task(task_id)).status is TaskStatus.OPEN
    assert len(await dash.store.list_client_tasks(client_id)) == 1


async def test_manager_takes_and_closes_a_task_with_a_follow_up_in_the_timeline(
    dash: Dashboard,
) -> None:
    client_id, task_id = await _task(dash)
    due = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    async with await dash.signed_in("anna") as http:
        async with http.get("/tasks") as page:
            csrf = csrf_of(await page.text())
        async with http.post(
            f"/tasks/{task_id}/take", data={"_csrf": csrf, "next": "/tasks"}
        ) as response:
            assert response.status == 200
            assert str(response.url).endswith("/tasks")
        taken = await dash.store.get_task(task_id)
        assert (taken.status, taken.assignee) == (TaskStatus.IN_PROGRESS, "anna")
        async with http.get("/tasks?view=mine") as page:
            assert "Позвонить критику" in await page.text()
        form = {
            "_csrf": csrf,
            "note": "Извинились, дали скидку",
            "follow_up_title": "Узнать, доволен ли скидкой",
            "follow_up_due": due,
            "next": f"/clients/{client_id}",
        }
        async with http.post(f"/tasks/{task_id}/done", data=form) as response:
            assert response.status == 200
            card = await response.text()
    done = await dash.store.get_task(task_id)
    assert done.status is TaskStatus.DONE
    assert done.note == "Извинились, дали скидку"
    follow_up = next(t for t in await dash.store.list_client_tasks(client_id) if t.id != task_id)
    assert follow_up.title == "Узнать, доволен ли скидкой"
    assert follow_up.status is TaskStatus.OPEN
    assert follow_up.source_ref == f"task:{task_id}"
    assert follow_up.due_at.date().isoformat() == due
    summaries = [e.summary for e in await dash.store.timeline(client_id)]
    assert "Задача «Позвонить критику» взята в работу: anna" in summaries
    assert "Задача «Позвонить критику» выполнена: anna. Извинились, дали скидку" in summaries
    assert "Задача: Узнать, доволен ли скидкой" in summaries
    assert "взята в работу: anna" in card  # the card shows the whole loop
    assert "Узнать, доволен ли скидкой" in card


async def test_a_taken_task_cannot_be_taken_again(dash: Dashboard) -> None:
    _, task_id = await _task(dash)
    await dash.store.update_task(task_id, status=TaskStatus.IN_PROGRESS, assignee="boris")
    async with await dash.signed_in("anna") as http:
        async with http.get("/tasks") as page:
            csrf = csrf_of(await page.text())
        async with http.post(f"/tasks/{task_id}/take", data={"_csrf": csrf}) as response:
            assert response.status == 400
            assert "уже взяли" in await response.text()
    assert (await dash.store.get_task(task_id)).assignee == "boris"


async def test_follow_up_in_the_past_is_refused(dash: Dashboard) -> None:
    client_id, _ = await _task(dash)
    async with await dash.signed_in("anna") as http:
        async with http.get(f"/clients/{client_id}") as page:
            csrf = csrf_of(await page.text())
        form = {"_csrf": csrf, "title": "Перезвонить", "due": "2001-01-01"}
        async with http.post(f"/clients/{client_id}/tasks", data=form) as response:
            assert response.status == 400
        form["due"] = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
        async with http.post(f"/clients/{client_id}/tasks", data=form) as response:
            assert response.status == 200
    kinds = [e.kind for e in await dash.store.timeline(client_id)]
    assert kinds.count(EventKind.TASK) == 2


async def test_task_list_pages_by_due_date_without_gaps_or_repeats(dash: Dashboard) -> None:
    client = await dash.store.create_client(ClientInput("C1", name="Иван Петров"))
    due = datetime.now(UTC) + timedelta(days=1)
    made = [
        await dash.store.create_task(NewTask(client.id, "callback", f"Задача {i}", due))
        for i in range(7)  # one due moment for all: the id breaks the ties
    ]
    seen: list[int] = []
    async with await dash.signed_in("vera") as http:
        url: str | None = "/tasks"
        while url is not None:
            async with http.get(url) as page:
                assert page.status == 200
                html = await page.text()
            shown = [int(i) for i in TASK_RE.findall(html)]
            assert 0 < len(shown) <= 5  # the fixture's page size
            seen.extend(shown)
            link = NEXT_RE.search(html)
            url = unescape(link.group(1)) if link else None
            assert ("← В начало" in html) == (len(seen) > 5)
    assert seen == [t.id for t in made]
