"""Database plumbing shared by every subsystem: one MetaData, UTC timestamps, engines, sessions.

Each subsystem declares its own tables on :class:`Base` in its own ``tables.py`` and owns their
migrations; nothing here knows any table.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, DateTime, MetaData, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
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


def table_of(model: type[Base]) -> Table:
    """The Core table of a declared row class (for Core statements on hot paths)."""
    return cast(Table, model.__table__)


def dialect_insert(bind: object, table: Table | type[Base]) -> Any:
    """``INSERT`` with PostgreSQL's / SQLite's ``ON CONFLICT`` clauses for ``bind``'s dialect.

    ``bind``: a dialect name, a dialect, a session, or anything with ``.dialect`` (a connection,
    an engine). The one place insert-once and upsert statements pick their dialect: both backends
    spell ``on_conflict_do_nothing`` / ``on_conflict_do_update`` the same way.
    """
    if isinstance(bind, str):
        name = bind
    elif isinstance(bind, Dialect):
        name = bind.name
    elif isinstance(bind, AsyncSession):
        name = bind.bind.dialect.name if bind.bind is not None else "sqlite"
    else:
        name = cast(Any, bind).dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def insert_ignore(bind: object, table: Table, values: dict[str, Any]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` of one row (any unique constraint)."""
    return dialect_insert(bind, table).values(**values).on_conflict_do_nothing()


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
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if is_sqlite(url):
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
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_serializer=_json_dumps,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


__all__ = [
    "JSON",
    "Base",
    "UtcDateTime",
    "create_engine",
    "is_sqlite",
    "session_factory",
    "utcnow",
]
