"""Dashboard users and their sessions, stored in the dashboard's own tables."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dashboard.roles import Role
from dashboard.tables import DashboardSessionRow, DashboardUserRow
from povtor.db import autocommit_reads, utcnow
from povtor.errors import InvalidInput, NotFound

LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str
    role: Role
    disabled: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    expires_at: datetime


def normalize_login(login: str) -> str:
    value = login.strip().lower()
    if not LOGIN_RE.match(value):
        raise InvalidInput(
            "логин: 2-64 символа, латинские буквы, цифры, точка, дефис или подчёркивание"
        )
    return value


def _user(row: DashboardUserRow) -> User:
    return User(row.id, row.login, Role(row.role), row.disabled_at is not None, row.created_at)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


SESSION_CACHE_S = 5.0
SESSION_CACHE_SIZE = 1024
_S, _U = DashboardSessionRow.__table__.c, DashboardUserRow.__table__.c
# built once (building a statement costs more CPU than running it); read on every request
# whose session is not kept, on a connection outside a transaction on PostgreSQL: one round
# trip, no ORM session
_SESSION_READ = (
    select(_U.id, _U.login, _U.role, _U.created_at, _S.csrf_token, _S.expires_at)
    .join_from(DashboardSessionRow.__table__, DashboardUserRow.__table__, _U.id == _S.user_id)
    .where(
        _S.token_hash == bindparam("key"),
        _S.expires_at > bindparam("now"),
        _U.disabled_at.is_(None),
    )
)


class UserStore:
    """Users and sessions. A session found by its cookie is kept ``cache_s`` seconds in this
    process, so pages do not read it again on every request; signing out, a new role, password
    or a disabled user through this store drop it here at once, and a change made elsewhere
    (the ``povtor user`` command) applies within ``cache_s``. A dashboard served by several
    processes keeps nothing (``cache_s`` 0): each request reads its session, so a change made
    in one process holds in every other at once."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache_s: float = SESSION_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions  # the dashboard's tables (also the login throttle's)
        bind = sessions.kw.get("bind")
        self._reads = autocommit_reads(bind) if isinstance(bind, AsyncEngine) else None
        self._cache_s = cache_s
        self._clock = clock
        self._cached: dict[str, tuple[float, Session]] = {}  # by token hash
        self._changes = 0  # a read that began before a change is not kept

    def _forget_user(self, user_id: int) -> None:
        self._changes += 1
        for key in [k for k, (_, s) in self._cached.items() if s.user.id == user_id]:
            del self._cached[key]

    # -- users -------------------------------------------------------------------------------

    async def create(self, login: str, password_hash: str, role: Role) -> User:
        now = utcnow()
        row = DashboardUserRow(
            login=normalize_login(login),
            password_hash=password_hash,
            role=role.value,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.sessions.begin() as session:
                session.add(row)
                await session.flush()
                return _user(row)
        except IntegrityError as err:
            raise InvalidInput(f"пользователь {row.login} уже есть") from err

    async def credentials(self, login: str) -> tuple[User, str] | None:
        """The active user with this login and their password hash, or None."""
        try:
            value = normalize_login(login)
        except InvalidInput:
            return None
        async with self.sessions() as session:
            row = (
                await session.scalars(
                    select(DashboardUserRow).where(
                        DashboardUserRow.login == value, DashboardUserRow.disabled_at.is_(None)
                    )
                )
            ).first()
            return None if row is None else (_user(row), row.password_hash)

    async def list(self) -> Sequence[User]:
        async with self.sessions() as session:
            rows = await session.scalars(select(DashboardUserRow).order_by(DashboardUserRow.login))
            return [_user(r) for r in rows]

    async def _update(self, login: str, **values: object) -> User:
        async with self.sessions.begin() as session:
            row = (
                await session.scalars(
                    select(DashboardUserRow).where(
                        DashboardUserRow.login == normalize_login(login)
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"пользователя {login} нет")
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            await session.flush()
            if "password_hash" in values or values.get("disabled_at") is not None:
                await session.execute(
                    delete(DashboardSessionRow).where(DashboardSessionRow.user_id == row.id)
                )
            user = _user(row)
        self._forget_user(user.id)  # after the commit: no request caches the old row again
        return user

    async def set_password(self, login: str, password_hash: str) -> User:
        """Changes the password and signs the user out everywhere."""
        return await self._update(login, password_hash=password_hash)

    async def set_role(self, login: str, role: Role) -> User:
        return await self._update(login, role=role.value)

    async def set_disabled(self, login: str, disabled: bool) -> User:
        return await self._update(login, disabled_at=utcnow() if disabled else None)

    async def rehash(self, user_id: int, password_hash: str) -> None:
        """Stores a stronger hash of the same password (no sign-out)."""
        self._forget_user(user_id)
        async with self.sessions.begin() as session:
            await session.execute(
                update(DashboardUserRow)
                .where(DashboardUserRow.id == user_id)
                .values(password_hash=password_hash)
            )

    # -- sessions ----------------------------------------------------------------------------

    async def open_session(self, user: User, ttl: timedelta) -> tuple[str, Session]:
        """A new session; returns the cookie token (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.sessions.begin() as session:
            await session.execute(
                delete(DashboardSessionRow).where(DashboardSessionRow.expires_at < now)
            )
            session.add(
                DashboardSessionRow(
                    token_hash=_token_hash(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return token, Session(user, csrf, now + ttl)

    async def session(self, token: str) -> Session | None:
        """The live session of an active user for this cookie token, or None."""
        key = _token_hash(token)
        now = utcnow()
        kept = self._cached.get(key)
        if kept is not None:
            if self._clock() - kept[0] < self._cache_s and kept[1].expires_at > now:
                return kept[1]
            del self._cached[key]
        changes = self._changes
        if self._reads is not None:
            async with self._reads.connect() as conn:
                row = (await conn.execute(_SESSION_READ, {"key": key, "now": now})).first()
        else:
            async with self.sessions() as session:
                row = (await session.execute(_SESSION_READ, {"key": key, "now": now})).first()
        if row is None:
            return None
        user = User(row.id, row.login, Role(row.role), False, row.created_at)
        found = Session(user, row.csrf_token, row.expires_at)
        if self._cache_s > 0 and changes == self._changes:
            while len(self._cached) >= SESSION_CACHE_SIZE:
                del self._cached[next(iter(self._cached))]
            self._cached[key] = (self._clock(), found)
        return found

    async def close_session(self, token: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                delete(DashboardSessionRow).where(
                    DashboardSessionRow.token_hash == _token_hash(token)
                )
            )
        self._changes += 1  # after the commit, as for a changed user
        self._cached.pop(_token_hash(token), None)
