"""Identical page requests in flight share one page.

Twenty managers opening the overview after the same alert ask for the same figures. The first
request for a page reads and renders it; requests for the same page (same path and query, same
role) that arrive while it is being made wait for it and get the same body with their own
login and CSRF token written in. Nothing is kept once the first request has its page: a
request that arrives after that reads the store afresh, so a shared page is never older than
the moment the first of its requests arrived.

The page is rendered with per-process placeholders for the two per-user values (random hex, so
no stored text can be taken for one and escaping leaves them as they are); every request, the
first included, gets them replaced. A request that changes something (any other method) ends
sharing for what began before it: a manager who closes a task and is sent back to the list
never gets a list begun before the change. Only a 200 page without cookies is shared; when the
first request fails or answers anything else, each waiting request makes its own page.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field, replace
from functools import wraps

from aiohttp import web
from markupsafe import escape

from dashboard.context import PAGES_IN_FLIGHT, READ_METHODS, SESSION, SHARED_RENDER
from dashboard.users import Session

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Vary = Callable[[web.Request, Session], Hashable]


@dataclass(frozen=True, slots=True)
class Placeholders:
    """What a shared page is rendered with instead of the requesting user's own values."""

    login: str = field(default_factory=lambda: f"p{secrets.token_hex(16)}")
    csrf: str = field(default_factory=lambda: f"p{secrets.token_hex(16)}")

    def session(self, session: Session) -> Session:
        return replace(session, user=replace(session.user, login=self.login), csrf_token=self.csrf)

    def fill(self, body: bytes, session: Session) -> bytes:
        login = str(escape(session.user.login)).encode()
        csrf = str(escape(session.csrf_token)).encode()
        return body.replace(self.login.encode(), login).replace(self.csrf.encode(), csrf)


@dataclass(frozen=True, slots=True)
class Page:
    """A 200 page as its first request got it (only those are shared)."""

    body: bytes
    content_type: str
    charset: str | None
    headers: tuple[tuple[str, str], ...]


class PagesInFlight:
    """The pages being made, by what makes two requests' pages the same; and the generation
    of writes, which every key carries."""

    def __init__(self) -> None:
        self.placeholders = Placeholders()
        self._making: dict[Hashable, asyncio.Future[Page | None]] = {}
        self._generation = 0
        self.waiting = 0  # requests waiting for another request's page
        self.shared = 0  # requests served another request's page

    def written(self) -> None:
        self._generation += 1

    async def serve(
        self, request: web.Request, handler: Handler, session: Session, vary: Hashable
    ) -> web.StreamResponse:
        key = (request.path_qs, session.user.role, vary, self._generation)
        making = self._making.get(key)
        if making is not None:
            self.waiting += 1
            try:
                page = await asyncio.shield(making)
            finally:
                self.waiting -= 1
            if page is None:  # the first request got no page to share: make our own
                return await handler(request)
            self.shared += 1
            return self._response(page, session)
        future: asyncio.Future[Page | None] = asyncio.get_running_loop().create_future()
        self._making[key] = future
        page = None
        try:
            request[SHARED_RENDER] = self.placeholders
            response = await handler(request)
            page = _shareable(response)
        finally:  # an error page rendered by the middlewares gets this user's own values
            del request[SHARED_RENDER]
            del self._making[key]
            future.set_result(page)
        if page is None:  # not shared (a status but 200, a cookie): still this user's values
            if isinstance(response, web.Response) and isinstance(response.body, bytes):
                response.body = self.placeholders.fill(response.body, session)
            return response
        return self._response(page, session)

    def _response(self, page: Page, session: Session) -> web.Response:
        response = web.Response(
            body=self.placeholders.fill(page.body, session),
            content_type=page.content_type,
            charset=page.charset,
        )
        response.headers.extend(page.headers)
        return response


def _shareable(response: web.StreamResponse) -> Page | None:
    if type(response) is not web.Response or response.status != 200 or response.cookies:
        return None
    body = response.body
    if not isinstance(body, bytes):
        return None
    kept = tuple(
        (name, value)
        for name, value in response.headers.items()
        if name.lower() not in ("content-type", "content-length")
    )
    return Page(body, response.content_type, response.charset, kept)


def shared_page(vary: Vary | None = None) -> Callable[[Handler], Handler]:
    """A page view whose concurrent identical requests share one page; ``vary`` adds what
    else tells two requests' pages apart (say, the user's own task list)."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def shared(request: web.Request) -> web.StreamResponse:
            session = request.get(SESSION)
            if not isinstance(session, Session) or request.method != "GET":
                return await handler(request)
            extra = vary(request, session) if vary is not None else None
            return await request.app[PAGES_IN_FLIGHT].serve(request, handler, session, extra)

        return shared

    return wrap


@web.middleware
async def writes_end_sharing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After any request that may change something, no request joins a page begun before."""
    if request.method in READ_METHODS:
        return await handler(request)
    try:
        return await handler(request)
    finally:
        request.app[PAGES_IN_FLIGHT].written()
