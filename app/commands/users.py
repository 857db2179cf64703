"""``povtor user add|list|passwd|disable|enable``: dashboard accounts from the command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from dashboard.roles import Role

T = TypeVar("T")
app = typer.Typer(help="Dashboard users (roles: admin, manager, viewer).", no_args_is_help=True)


def _with_users(fn: Callable[[Any, Any], Awaitable[T]]) -> T:
    """Runs ``fn(user_store, passwords)`` against the configured database."""
    from dashboard.passwords import Passwords
    from dashboard.users import UserStore
    from povtor.db import create_engine, session_factory
    from povtor.settings import Settings

    settings = Settings()

    async def run() -> T:
        engine = create_engine(settings.db_url, pool_size=1)
        try:
            return await fn(UserStore(session_factory(engine)), Passwords(settings.dashboard))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _read_password(from_stdin: bool, login: str) -> str:
    from dashboard.passwords import password_problem

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Пароль", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password, login)
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    return password


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"povtor user: {err}", err=True)
    return typer.Exit(1)


@app.command("add")
def add(
    login: str,
    role: Role = typer.Option(Role.MANAGER, "--role", help="admin, manager or viewer"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read it from stdin"),
) -> None:
    """Add a user; the password is asked twice (or read from stdin)."""
    from povtor.errors import PovtorError

    password = _read_password(password_stdin, login)

    async def create(users: Any, passwords: Any) -> Any:
        return await users.create(login, await passwords.hash(password), role)

    try:
        user = _with_users(create)
    except PovtorError as err:
        raise _fail(err) from None
    typer.echo(f"Пользователь {user.login} добавлен ({user.role.value})")


@app.command("list")
def list_users(as_json: bool = typer.Option(False, "--json", help="JSON lines")) -> None:
    """List users with their roles."""

    async def fetch(users: Any, _passwords: Any) -> Any:
        return await users.list()

    for user in _with_users(fetch):
        if as_json:
            record = {"login": user.login, "role": user.role.value, "disabled": user.disabled}
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            state = " (отключён)" if user.disabled else ""
            typer.echo(f"{user.login}\t{user.role.value}{state}")


@app.command("passwd")
def passwd(
    login: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read it from stdin"),
) -> None:
    """Set a new password; the user is signed out everywhere."""
    from povtor.errors import PovtorError

    password = _read_password(password_stdin, login)

    async def change(users: Any, passwords: Any) -> Any:
        return await users.set_password(login, await passwords.hash(password))

    try:
        _with_users(change)
    except PovtorError as err:
        raise _fail(err) from None
    typer.echo(f"Пароль {login} изменён")


def _set_disabled(login: str, disabled: bool) -> None:
    from povtor.errors import PovtorError

    async def change(users: Any, _passwords: Any) -> Any:
        return await users.set_disabled(login, disabled)

    try:
        _with_users(change)
    except PovtorError as err:
        raise _fail(err) from None
    typer.echo(f"{login}: {'отключён' if disabled else 'включён'}")


@app.command("disable")
def disable(login: str) -> None:
    """Disable a user and end their sessions."""
    _set_disabled(login, True)


@app.command("enable")
def enable(login: str) -> None:
    """Enable a disabled user."""
    _set_disabled(login, False)
