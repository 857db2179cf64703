"""Sign-in, sessions, throttling, CSRF and headers, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from yarl import URL

from crm_sync.history.store import ClientInput
from dashboard.context import SESSION_COOKIE
from dashboard.roles import Role
from dashboard.users import UserStore
from povtor.db import session_factory
from povtor.domain import TaskStatus
from povtor.ports import NewTask
from tests.integration.dashboard.conftest import PASSWORD, Dashboard, csrf_of

PRIVATE_PAGES = ["/", "/nps", "/clients", "/clients/1", "/tasks", "/users", "/calls/1/recording"]


async def test_every_private_page_redirects_to_login(dash: Dashboard) -> None:
    async with dash.client() as http:
        for path in PRIVATE_PAGES:
            async with http.get(path, allow_redirects=False) as response:
                assert response.status == 303, path
                assert response.headers["Location"].startswith("/login?next=")
        async with http.post("/tasks/1/take", data={}, allow_redirects=False) as response:
            assert response.status == 303
        async with http.get("/nps?group=detractor", allow_redirects=False) as response:
            location = URL(response.headers["Location"])
            assert location.path == "/login"
            assert location.query["next"] == "/nps?group=detractor"


async def test_login_lands_on_the_page_asked_for(dash: Dashboard) -> None:
    async with dash.client() as http:
        async with http.get("/login?next=/tasks") as page:
            token = csrf_of(await page.text())
        form = {"_csrf": token, "login": "Anna", "password": PASSWORD, "next": "/tasks"}
        async with http.post("/login", data=form, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/tasks"
        async with http.get("/tasks") as page:
            assert page.status == 200
            assert "Задачи" in await page.text()


async def test_login_never_redirects_to_another_site(dash: Dashboard) -> None:
    async with dash.client() as http:
        async with http.get("/login") as page:
            token = csrf_of(await page.text())
        form = {"_csrf": token, "login": "anna", "password": PASSWORD, "next": "//evil.example/"}
        async with http.post("/login", data=form, allow_redirects=False) as response:
            assert response.headers["Location"] == "/"


async def test_wrong_password_is_rejected_then_login_throttled(
    dash: Dashboard, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dashboard.auth_views")
    async with dash.client() as http:
        for _ in range(3):
            response = await dash.login(http, "anna", "неверный-пароль")
            assert response.status == 401
        locked = await dash.login(http, "anna")  # the right password, but locked now
        assert locked.status == 429
        assert "anna" not in [c.key for c in http.cookie_jar]
        async with http.get("/", allow_redirects=False) as response:
            assert response.status == 303
    async with dash.client() as other:
        assert (await dash.login(other, "admin")).status == 303  # other logins unaffected
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("failed sign-in: wrong password for login a**a from 127.0.0.*") == 3
    assert any(
        m.startswith("sign-in throttled for") and m.endswith("login a**a from 127.0.0.*")
        for m in messages
    )


async def test_unknown_login_is_rejected_like_a_wrong_password(dash: Dashboard) -> None:
    async with dash.client() as http:
        response = await dash.login(http, "nobody", PASSWORD)
        assert response.status == 401


async def test_session_cookie_is_httponly_and_samesite_lax(dash: Dashboard) -> None:
    async with dash.client() as http:
        async with http.get("/login") as page:
            token = csrf_of(await page.text())
        form = {"_csrf": token, "login": "anna", "password": PASSWORD}
        async with http.post("/login", data=form, allow_redirects=False) as response:
            cookie = next(
                v for v in response.headers.getall("Set-Cookie") if "povtor_session=" in v
            )
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http here; POVTOR_DASHBOARD_SECURE_COOKIES sets it


async def test_login_form_without_its_token_is_forbidden(dash: Dashboard) -> None:
    async with dash.client() as http:
        form = {"login": "anna", "password": PASSWORD}
        async with http.post("/login", data=form, allow_redirects=False) as response:
            assert response.status == 403


async def test_post_without_or_with_wrong_csrf_is_forbidden(dash: Dashboard) -> None:
    client = await dash.store.create_client(ClientInput("C1", name="Иван"))
    task = await dash.store.create_task(
        NewTask(client.id, "detractor", "Позвонить", datetime.now(UTC) + timedelta(days=1))
    )
    async with await dash.signed_in("anna") as http:
        for form in ({}, {"_csrf": "forged"}):
            async with http.post(
                f"/tasks/{task.id}/take", data=form, allow_redirects=False
            ) as response:
                assert response.status == 403
        async with http.post("/logout", data={}, allow_redirects=False) as response:
            assert response.status == 403
        assert (await dash.store.get_task(task.id)).status is TaskStatus.OPEN
        async with http.get("/", allow_redirects=False) as response:
            assert response.status == 200  # still signed in


async def test_logout_ends_the_session_on_the_server(dash: Dashboard) -> None:
    http = await dash.signed_in("anna")
    async with http:
        token = next(c.value for c in http.cookie_jar if c.key == "povtor_session")
        async with http.get("/") as page:
            csrf = csrf_of(await page.text())
        async with http.post("/logout", data={"_csrf": csrf}, allow_redirects=False) as response:
            assert response.status == 303
    async with dash.client() as replay:  # the old cookie, replayed, opens nothing
        replay.cookie_jar.update_cookies({"povtor_session": token})
        async with replay.get("/", allow_redirects=False) as response:
            assert response.status == 303


async def test_private_pages_send_security_headers(dash: Dashboard) -> None:
    async with await dash.signed_in("anna") as http, http.get("/") as response:
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "<script" not in await response.text()  # nothing inline for the CSP to block


async def test_disabled_user_is_signed_out_at_once(dash: Dashboard) -> None:
    async with await dash.signed_in("vera") as http:
        await dash.users.set_disabled("vera", True)
        async with http.get("/", allow_redirects=False) as response:
            assert response.status == 303
        assert (await dash.login(http, "vera")).status == 401


async def test_a_session_is_reread_after_its_cache_time_and_dropped_at_once_here(
    dash: Dashboard,
) -> None:
    """A change made by another process (another store on the same tables) applies after the
    cache time; signing out and a new role through the serving store apply at once."""
    now = [0.0]
    here = UserStore(session_factory(dash.engine), cache_s=5.0, clock=lambda: now[0])
    elsewhere = UserStore(session_factory(dash.engine))
    async with await dash.signed_in("anna") as http:
        token = next(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)

        async def role() -> Role | None:
            found = await here.session(token)
            return None if found is None else found.user.role

        assert await role() is Role.MANAGER
        await elsewhere.set_role("anna", Role.VIEWER)
        assert await role() is Role.MANAGER  # kept for the cache time
        now[0] = 5.0
        assert await role() is Role.VIEWER
        await here.set_role("anna", Role.ADMIN)
        assert await role() is Role.ADMIN  # its own change: at once
        await here.close_session(token)
        assert await role() is None
        async with http.get("/", allow_redirects=False) as response:
            assert response.status == 303  # the serving process reads it gone
