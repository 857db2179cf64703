"""Typed application keys and per-request accessors shared by the dashboard's views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from dashboard.passwords import Passwords
from dashboard.recent import Recent
from dashboard.roles import can_listen, can_manage_users, can_write, sees_full_phones
from dashboard.throttle import LoginThrottle
from dashboard.users import Session, UserStore
from povtor.db import utcnow
from povtor.health import HealthBoard
from povtor.ports import (
    CallHistory,
    ClientEraser,
    CrmSyncView,
    DeadLetters,
    HealthFeed,
    HistoryStore,
    OutreachControl,
    Reports,
    RetentionView,
)
from povtor.settings import Settings

if TYPE_CHECKING:
    from dashboard.shared_pages import PagesInFlight, Placeholders


@dataclass
class Deps:
    """Everything the views use, built once per application."""

    settings: Settings
    store: HistoryStore
    reports: Reports
    calls: CallHistory | None
    passwords: Passwords
    login_throttle: LoginThrottle
    address_throttle: LoginThrottle
    secret_key: bytes
    users: UserStore
    crm: CrmSyncView | None = None  # the CRM sync; None: the page says how to turn it on
    retention: RetentionView | None = None  # None: figures and lists say they are not connected
    transcription_off: str | None = None  # why recordings are not transcribed (None: they are)
    health: HealthBoard | None = None  # the worker's components (trunks, registration...)
    # the same as the worker published them, for a dashboard served by several processes
    shared_health: HealthFeed | None = None
    outreach: OutreachControl | None = None  # the outreach page; None: not connected
    dead_letters: Sequence[DeadLetters] = ()  # every durable queue's failures, for /failures
    erasure: ClientEraser | None = None  # erasing a client on request; None: CLI only
    started_at: datetime = field(default_factory=utcnow)
    recent: Recent = field(default_factory=lambda: Recent(0))  # slow figures, reused briefly

    @property
    def user_store(self) -> UserStore:
        return self.users


DEPS = web.AppKey("dashboard_deps", Deps)
SESSION = web.RequestKey("dashboard_session", Session)
# a page being rendered for every identical request in flight (dashboard.shared_pages)
SHARED_RENDER: web.RequestKey[Placeholders] = web.RequestKey("dashboard_shared_render")
PAGES_IN_FLIGHT: web.AppKey[PagesInFlight] = web.AppKey("dashboard_pages_in_flight")
# requests that change nothing: no CSRF token asked, no shared page's generation ended
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "povtor_session"
LOGIN_COOKIE = "povtor_login"


def deps(request: web.Request) -> Deps:
    return request.app[DEPS]


def current_session(request: web.Request) -> Session:
    """The signed-in session (the auth middleware guarantees it on private pages)."""
    session = request.get(SESSION)
    if not isinstance(session, Session):
        raise web.HTTPFound("/login")
    return session


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path on this site: never an open redirect to another host.

    Judged as a browser reads the Location header: it drops tabs and line breaks first
    (``/\t/evil.example`` is ``//evil.example``, another host) and takes ``\\`` for ``/``;
    any control character or space makes the value refused outright.
    """
    if not value or any(ch <= " " or ch == "\x7f" for ch in value):
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """A page with what every template needs: the user, their permissions, the CSRF token."""
    common: dict[str, Any] = {"user": None, "csrf": "", "nav": "", "path_qs": request.path_qs}
    session = request.get(SESSION)
    if isinstance(session, Session):
        role = session.user.role
        placeholders = request.get(SHARED_RENDER)
        if placeholders is not None:  # the user's own values are written in per request
            session = placeholders.session(session)
        common.update(
            user=session.user,
            csrf=session.csrf_token,
            can_write=can_write(role),
            can_manage_users=can_manage_users(role),
            can_listen=can_listen(role),
            sees_phones=sees_full_phones(role),
        )
    else:
        common.update(can_write=False, can_manage_users=False, can_listen=False, sees_phones=False)
    return aiohttp_jinja2.render_template(template, request, common | context, status=status)
