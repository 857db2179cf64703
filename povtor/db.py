"""Database plumbing shared by every subsystem: one MetaData, UTC timestamps, engines, sessions.

Each subsystem declares its own tables on :class:`Base` in its own ``tables.py`` and owns their
migrations; nothing here knows any table.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, Table, event, exc
from sqlalchemy.dialects.postgresql import dml as pg_dml
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.engine import CursorResult, Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.base import _generative
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite rowid aliases must be INTEGER


def table_of(model: type[Base]) -> Table:
    """The Core table of a declared row class (for Core statements on hot paths)."""
    return cast(Table, model.__table__)


# SQLAlchemy 2.0 leaves both dialects' INSERT out of its compiled cache (the ON CONFLICT clauses
# have no cache key), so every insert-once statement was compiled again on each execution. The
# classes below give ``ON CONFLICT DO NOTHING`` a cache key (its target columns and condition)
# and the INSERT the standard one, which covers its ON CONFLICT clause: such statements are
# compiled once per form. ``ON CONFLICT DO UPDATE`` has no key (its clause says so), so
# statements with it are compiled each time, as before.
_TARGET = [
    ("inferred_target_elements", InternalTraversal.dp_multi_list),
    ("inferred_target_whereclause", InternalTraversal.dp_clauseelement),
]


class _PgDoNothing(pg_dml.OnConflictDoNothing):
    _traverse_internals = [("constraint_target", InternalTraversal.dp_string), *_TARGET]


class _SqliteDoNothing(sqlite_dml.OnConflictDoNothing):
    _traverse_internals = _TARGET


class _PgDoUpdate(pg_dml.OnConflictDoUpdate):
    inherit_cache = False  # not cached (SQLAlchemy would warn of a clause that does not say)


class _SqliteDoUpdate(sqlite_dml.OnConflictDoUpdate):
    inherit_cache = False


class _CachedConflicts:
    """The ``on_conflict_*`` methods of both dialects' INSERT, building the clause classes
    above (the arguments are the dialect's own, passed through unchanged)."""

    _do_nothing: type[Any]
    _do_update: type[Any]
    _post_values_clause: Any

    def _with_conflict(self, clause: Any) -> None:
        if self._post_values_clause is not None:
            raise ValueError("this INSERT has an ON CONFLICT clause already")
        self._post_values_clause = clause

    @_generative
    def on_conflict_do_update(self, *args: Any, **kwargs: Any) -> Any:
        self._with_conflict(self._do_update(*args, **kwargs))
        return self

    @_generative
    def on_conflict_do_nothing(self, *args: Any, **kwargs: Any) -> Any:
        self._with_conflict(self._do_nothing(*args, **kwargs))
        return self


class _PgInsert(_CachedConflicts, pg_dml.Insert):
    inherit_cache = True
    _do_nothing, _do_update = _PgDoNothing, _PgDoUpdate


class _SqliteInsert(_CachedConflicts, sqlite_dml.Insert):
    inherit_cache = True
    _do_nothing, _do_update = _SqliteDoNothing, _SqliteDoUpdate


def dialect_insert(bind: object, table: Table | type[Base]) -> Any:
    """``INSERT`` with PostgreSQL's / SQLite's ``ON CONFLICT`` clauses for ``bind``'s dialect.

    ``bind``: a dialect name, a dialect, a session, or anything with ``.dialect`` (a connection,
    an engine). The one place insert-once and upsert statements pick their dialect: both backends
    spell ``on_conflict_do_nothing`` / ``on_conflict_do_update`` the same way. Statements with
    ``on_conflict_do_nothing`` are kept in SQLAlchemy's compiled cache (see above).
    """
    if isinstance(bind, str):
        name = bind
    elif isinstance(bind, Dialect):
        name = bind.name
    elif isinstance(bind, AsyncSession):
        name = bind.bind.dialect.name if bind.bind is not None else "sqlite"
    else:
        name = cast(Any, bind).dialect.name
    return (_PgInsert if name == "postgresql" else _SqliteInsert)(table)


def insert_ignore(
    bind: object,
    table: Table,
    values: dict[str, Any] | None = None,
    *,
    on: Sequence[Any] | None = None,
) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING``: of the one row ``values``, or, without them, of
    the rows given to ``execute`` (executemany). A conflict on any unique constraint, or only
    on the columns ``on`` (the target PostgreSQL needs for ``RETURNING`` of new rows only)."""
    stmt = dialect_insert(bind, table)
    if values is not None:
        stmt = stmt.values(**values)
    return stmt.on_conflict_do_nothing(index_elements=on)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Povtor stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # asyncpg gives UTC already: most reads
            return value
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


async def execute_dml(
    session: AsyncSession, statement: Any, params: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """Run an ``INSERT``/``UPDATE``/``DELETE`` on the session's connection: typed as the
    cursor result it is, with its ``rowcount`` (``AsyncSession.execute`` is typed as a plain
    ``Result``)."""
    return await (await session.connection()).execute(statement, params)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# Sync drivers named in a URL, and the async one Povtor runs on instead
_ASYNC_DRIVERS = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}


def async_url(url: str) -> str:
    """``url`` with its async driver: ``postgresql://`` (as libpq, Heroku and most hosting
    panels write it) and ``postgres://`` become ``postgresql+asyncpg://``, ``sqlite://``
    ``sqlite+aiosqlite://``. A URL naming a sync driver (``+psycopg2``) is left for
    :func:`unsupported_driver` to refuse."""
    scheme, sep, rest = url.partition("://")
    if not sep or "+" in scheme:
        return url
    driver = _ASYNC_DRIVERS.get(scheme.lower())
    if driver is None:
        return url
    dialect = "postgresql" if scheme.lower() == "postgres" else scheme.lower()
    return f"{dialect}+{driver}://{rest}"


def unsupported_driver(url: str) -> str | None:
    """Why ``url`` cannot be used (a sync or unknown driver), naming the right form; else None."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgresql+asyncpg", "sqlite+aiosqlite"):
        return None
    return (
        f"POVTOR_DATABASE_URL uses {scheme or 'no scheme'}: write postgresql://user:password@"
        "host:5432/name (run with asyncpg) or sqlite+aiosqlite:///path/to/povtor.db"
    )


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def create_private_sqlite_file(url: str) -> None:
    """Create a SQLite URL's database file readable by its owner only (0600), if it is missing
    and its folder exists: SQLite gives the -wal and -shm files the database file's mode."""
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if not path.parent.is_dir():
        return  # SQLite says the file cannot be opened
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "povtor_idle_since"


def ping_when_idle(engine: AsyncEngine, idle_s: float = PING_AFTER_IDLE_S) -> None:
    """Check a pooled connection on checkout only if it sat idle in the pool for ``idle_s`` or
    more (SQLAlchemy's ``pool_pre_ping`` checks every checkout: on asyncpg three round trips,
    ``BEGIN``, ``;``, ``ROLLBACK``). A connection that fails the check is replaced and the
    connections pooled before it are too, as with ``pool_pre_ping``; one taken back sooner and
    found cut when used is invalidated with the rest of the pool by SQLAlchemy, and its caller
    sees an error saying so (``connection_invalidated``): the callers that must not lose work
    retry those."""
    sync = engine.sync_engine
    dialect = sync.dialect

    @event.listens_for(sync, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < idle_s:  # new, or back moments ago
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as err:
            raise exc.InvalidatePoolError(f"a pooled connection failed its check: {err}") from err


def create_engine(
    url: str, *, echo: bool = False, pool_size: int = 10, pre_ping: bool = True
) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection
    and a new database file is created owner-only; PostgreSQL's pooled connections are checked
    when they were idle (:func:`ping_when_idle`), or never with ``pre_ping=False`` (after the
    server restarts, the first statement on an old connection then fails and the whole pool is
    replaced)."""
    if is_sqlite(url):
        create_private_sqlite_file(url)
        engine = create_async_engine(url, echo=echo, json_serializer=_json_dumps)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        # up to twice ``pool_size`` connections, each opened when first needed and then kept:
        # with an overflow, a burst (twenty managers at once) opened and closed the overflow's
        # connections every time, ~10-20 ms of CPU each, which doubled the pages' times
        pool_size=2 * pool_size,
        max_overflow=0,
        json_serializer=_json_dumps,
    )
    if pre_ping:
        ping_when_idle(engine)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def autocommit_reads(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for statements that only read: on PostgreSQL outside a transaction (its
    connections from the same pool, no BEGIN and ROLLBACK round trips around each read,
    two of the three per read); SQLite's engine as it is. Under READ COMMITTED each statement
    of a transaction sees its own snapshot anyway, so a read sees the same rows either way.
    Never for writes: each statement would commit on its own."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def read_sessions(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Sessions like ``sessions`` on :func:`autocommit_reads` of their engine."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine) or bind.dialect.name != "postgresql":
        return sessions
    return session_factory(autocommit_reads(bind))


__all__ = [
    "JSON",
    "Base",
    "UtcDateTime",
    "async_url",
    "autocommit_reads",
    "create_engine",
    "is_sqlite",
    "read_sessions",
    "session_factory",
    "unsupported_driver",
    "utcnow",
]
