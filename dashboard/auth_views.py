"""Sign in and sign out: argon2 check off the loop, throttling, session cookie, login CSRF."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from datetime import timedelta
from typing import Any

from aiohttp import web

from dashboard.context import LOGIN_COOKIE, SESSION_COOKIE, deps, render, safe_next
from povtor.logs import mask_address, mask_login

log = logging.getLogger(__name__)
LOGIN_COOKIE_TTL_S = 3600


def _secure(request: web.Request) -> bool:
    return deps(request).settings.dashboard.secure_cookies or request.secure


def _login_token(key: bytes, nonce: str) -> str:
    return hmac.new(key, f"login:{nonce}".encode(), hashlib.sha256).hexdigest()


async def login_form(request: web.Request) -> web.StreamResponse:
    return _render_form(request, error=None, status=200)


def _render_form(request: web.Request, *, error: str | None, status: int) -> web.Response:
    """The login form with a fresh pre-session token (signed cookie nonce = double submit)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    context: dict[str, Any] = {
        "error": error,
        "next": safe_next(request.query.get("next")),
        "login_csrf": _login_token(deps(request).secret_key, nonce),
    }
    response = render(request, "login.html", context, status=status)
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_COOKIE_TTL_S,
        httponly=True,
        samesite="Lax",
        secure=_secure(request),
        path="/login",
    )
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    form = await request.post()
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    sent = form.get("_csrf")
    expected = _login_token(d.secret_key, nonce)
    if not nonce or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        log.warning("login form without a valid token")
        raise web.HTTPForbidden(text="Форма устарела. Обновите страницу и войдите снова.")
    login = str(form.get("login", "")).strip().lower()[:64]
    password = str(form.get("password", ""))
    keys_login, key_address = f"login:{login}", f"ip:{request.remote or '?'}"
    wait = max(
        await d.login_throttle.retry_after(keys_login),
        await d.address_throttle.retry_after(key_address),
    )
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        log.warning(
            "sign-in throttled for %.0f s: login %s from %s",
            wait,
            mask_login(login),
            mask_address(request.remote),
        )
        return _render_form(
            request,
            error=f"Слишком много неудачных попыток. Попробуйте через {minutes} мин.",
            status=429,
        )
    found = await d.user_store.credentials(login)
    ok = await d.passwords.verify(found[1] if found else None, password)
    if not ok or found is None:
        await d.login_throttle.failed(keys_login)
        await d.address_throttle.failed(key_address)
        log.warning(
            "failed sign-in: %s login %s from %s",
            "unknown" if found is None else "wrong password for",
            mask_login(login),
            mask_address(request.remote),
        )
        return _render_form(request, error="Неверный логин или пароль.", status=401)
    user, stored_hash = found
    await d.login_throttle.succeeded(keys_login)
    if d.passwords.needs_rehash(stored_hash):
        await d.user_store.rehash(user.id, await d.passwords.hash(password))
    ttl = timedelta(hours=d.settings.dashboard.session_ttl_hours)
    token, _session = await d.user_store.open_session(user, ttl)
    log.info("user #%d signed in", user.id)
    response = web.HTTPSeeOther(safe_next(str(form.get("next", "/"))))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=_secure(request),
        path="/",
    )
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await deps(request).user_store.close_session(token)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response
