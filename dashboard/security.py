"""Middlewares: security headers, sign-in required, CSRF tokens, role checks, error pages."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from aiohttp import web

from dashboard.context import (
    READ_METHODS,
    SESSION,
    SESSION_COOKIE,
    current_session,
    deps,
    render,
)
from dashboard.roles import Role
from povtor.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PUBLIC_PREFIXES = ("/login", "/static/", "/healthz")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _set_headers(request, response)
        raise
    _set_headers(request, response)
    return response


def _set_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.path.startswith("/static/"):
        headers["Cache-Control"] = "public, max-age=3600"
    else:
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"


@web.middleware
async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the public ones needs a live session; else back to the login form."""
    if request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    token = request.cookies.get(SESSION_COOKIE)
    session = await deps(request).user_store.session(token) if token else None
    if session is None:
        target = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther(f"/login?next={quote(target, safe='/')}")
    request[SESSION] = session
    return await handler(request)


@web.middleware
async def check_csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing request carries the session's token in the ``_csrf`` field."""
    if request.method in READ_METHODS or request.path == "/login":
        return await handler(request)  # the login form checks its own pre-session token
    session = current_session(request)
    form = await request.post()
    sent = form.get("_csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
        log.warning("CSRF token missing or wrong: %s %s", request.method, request.path)
        raise web.HTTPForbidden(text="Неверный или устаревший токен формы. Обновите страницу.")
    return await handler(request)


def require(predicate: Callable[[Role], bool]) -> Callable[[Handler], Handler]:
    """Refuses (403) users whose role does not satisfy ``predicate``."""

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not predicate(current_session(request).user.role):
                raise web.HTTPForbidden(text="Недостаточно прав для этого действия.")
            return await handler(request)

        return guarded

    return decorate


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Russian error pages; failures logged with the path only (queries may hold personal data)."""
    try:
        return await handler(request)
    except NotFound:
        return _error(request, 404, "Не найдено")
    except InvalidInput as err:
        return _error(request, 400, str(err))
    except web.HTTPException as exc:
        shown = exc.status in (403, 404, 429, 503)
        if shown and exc.text and not exc.text.startswith(str(exc.status)):
            return _error(request, exc.status, exc.text)
        raise
    except Exception:
        log.exception("dashboard page failed: %s %s", request.method, request.path)
        return _error(request, 500, "Внутренняя ошибка. Подробности в журнале сервера.")


def _error(request: web.Request, status: int, message: str) -> web.Response:
    context: dict[str, Any] = {"status": status, "message": message}
    response = render(request, "error.html", context, status=status)
    _set_headers(request, response)
    return response
