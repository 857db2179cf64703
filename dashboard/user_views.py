"""Users page (admins only): list, add, change role, disable or enable."""

from __future__ import annotations

import logging

from aiohttp import web

from dashboard.context import current_session, deps, render
from dashboard.passwords import password_problem
from dashboard.roles import Role, can_manage_users
from dashboard.security import require
from dashboard.users import normalize_login
from povtor.errors import InvalidInput

log = logging.getLogger(__name__)


def _role(value: object) -> Role:
    if value not in {r.value for r in Role}:
        raise InvalidInput("Неизвестная роль")
    return Role(str(value))


@require(can_manage_users)
async def user_list(request: web.Request) -> web.StreamResponse:
    users = await deps(request).user_store.list()
    context = {"nav": "users", "users": users, "roles": list(Role)}
    return render(request, "users.html", context)


@require(can_manage_users)
async def user_create(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    form = await request.post()
    login = normalize_login(str(form.get("login", "")))
    password = str(form.get("password", ""))
    problem = password_problem(password, login)
    if problem:
        raise InvalidInput(problem)
    user = await d.user_store.create(
        login, await d.passwords.hash(password), _role(form.get("role"))
    )
    log.info("user #%d created by user #%d", user.id, current_session(request).user.id)
    raise web.HTTPSeeOther("/users")


@require(can_manage_users)
async def user_update(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    me = current_session(request).user
    login = normalize_login(request.match_info["login"])
    form = await request.post()
    action = form.get("action")
    if login == me.login and action in ("disable", "role"):
        raise InvalidInput("Нельзя отключить себя или сменить себе роль")
    if action == "role":
        user = await d.user_store.set_role(login, _role(form.get("role")))
    elif action in ("disable", "enable"):
        user = await d.user_store.set_disabled(login, action == "disable")
    else:
        raise InvalidInput("Неизвестное действие")
    log.info("user #%d changed (%s) by user #%d", user.id, action, me.id)
    raise web.HTTPSeeOther("/users")
