"""What several workers of one bot share through the database: the right to poll, and the key
that signs deep links.

Telegram serves ``getUpdates`` to one caller at a time (a second one gets 409 Conflict), so one
worker holds the ``polling`` lease and renews it; the others only send. A holder that dies
stops renewing and another worker takes over once the lease has run out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.tables import BotKeyRow, BotLeaseRow
from povtor.db import dialect_insert, table_of, utcnow
from povtor.settings import Settings

LEASES = table_of(BotLeaseRow)
KEYS = table_of(BotKeyRow)


class Lease:
    """One named lease; ``acquire`` takes or renews it, ``release`` lets it go."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        name: str,
        owner: str,
        duration: timedelta,
    ) -> None:
        self._sessions = sessions
        self.name = name
        self.owner = owner
        self.duration = duration

    async def acquire(self, now: datetime | None = None) -> bool:
        """True when this owner holds the lease until ``now + duration``."""
        now = now or utcnow()
        c = LEASES.c
        async with self._sessions.begin() as session:
            conn = await session.connection()
            await conn.execute(
                dialect_insert(conn, LEASES)
                .values(name=self.name, owner=None, lease_until=None, updated_at=now)
                .on_conflict_do_nothing(index_elements=[c.name])
            )
            row = (
                await conn.execute(
                    update(LEASES)
                    .where(
                        c.name == self.name,
                        or_(
                            c.owner.is_(None),
                            c.owner == self.owner,
                            c.lease_until.is_(None),
                            c.lease_until < now,
                        ),
                    )
                    .values(owner=self.owner, lease_until=now + self.duration, updated_at=now)
                    .returning(c.name)
                )
            ).first()
            return row is not None

    async def holder(self) -> str | None:
        async with self._sessions() as session:
            owner: str | None = await session.scalar(
                select(LEASES.c.owner).where(LEASES.c.name == self.name)
            )
            return owner

    async def release(self) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(LEASES)
                .where(LEASES.c.name == self.name, LEASES.c.owner == self.owner)
                .values(owner=None, lease_until=None, updated_at=utcnow())
            )


async def shared_key(sessions: async_sessionmaker[AsyncSession], name: str, candidate: str) -> str:
    """The key every worker uses under ``name``: the first worker's ``candidate`` is kept."""
    async with sessions.begin() as session:
        conn = await session.connection()
        await conn.execute(
            dialect_insert(conn, KEYS)
            .values(name=name, value=candidate, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=[KEYS.c.name])
        )
        value = await conn.scalar(select(KEYS.c.value).where(KEYS.c.name == name))
    return str(value)


async def link_key(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> str:
    """The key that signs deep links: ``POVTOR_SECRET_KEY``, else one kept in the database
    (the first worker's data-folder key), so a link printed anywhere opens on every worker."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return await shared_key(sessions, "link", settings.resolved_secret_key())
