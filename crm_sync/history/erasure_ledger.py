"""``ErasureLedger``: erasure requests, their progress per part, the suppression list and its
key, in crm_sync's tables (see :mod:`povtor.erasure` for the flow)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.history.tables import ErasureKeyRow, ErasureRequestRow, SuppressionRow
from povtor.db import insert_ignore, table_of, utcnow
from povtor.errors import ConfigError, NotFound
from povtor.ports import ErasureRequest
from povtor.suppression import SuppressionList

REQUESTS = table_of(ErasureRequestRow)
SUPPRESSIONS = table_of(SuppressionRow)
KEYS = table_of(ErasureKeyRow)
KEY_NAME = "suppression"
PENDING, DONE = "pending", "done"


def _fingerprint(key: bytes) -> str:
    return hmac.new(key, b"povtor erasure key fingerprint", hashlib.sha256).hexdigest()


def _request(row: Any) -> ErasureRequest:
    return ErasureRequest(
        id=row.id,
        client_id=row.client_id,
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        state=row.state,
        removed={part: dict(counts) for part, counts in (row.removed or {}).items()},
        finished_at=row.finished_at,
        tries=row.tries,
        error=row.error,
    )


class SqlErasureLedger:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], configured_key: str | None = None
    ) -> None:
        self._sessions = sessions
        self._configured = configured_key.encode() if configured_key else None
        self._key: bytes | None = None

    async def open_request(
        self, client_id: int, *, by: str, suppress: Sequence[str]
    ) -> ErasureRequest:
        now = utcnow()
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    select(REQUESTS).where(
                        REQUESTS.c.client_id == client_id, REQUESTS.c.state == PENDING
                    )
                )
            ).first()
            if row is None:
                request_id = (
                    await session.execute(
                        REQUESTS.insert()
                        .values(
                            client_id=client_id,
                            requested_at=now,
                            requested_by=by[:160],
                            state=PENDING,
                            removed={},
                            tries=0,
                        )
                        .returning(REQUESTS.c.id)
                    )
                ).scalar_one()
            else:
                request_id = row.id
            await self._suppress(session, suppress, request_id)
            return await self._get(session, request_id)

    async def suppress(self, digests: Sequence[str]) -> None:
        async with self._sessions.begin() as session:
            await self._suppress(session, digests, None)

    async def _suppress(
        self, session: AsyncSession, digests: Sequence[str], request_id: int | None
    ) -> None:
        if not digests:
            return
        now = utcnow()
        rows = [{"digest": d, "request_id": request_id, "created_at": now} for d in digests]
        await session.execute(insert_ignore(await session.connection(), SUPPRESSIONS), rows)

    async def pending(self, client_ids: Sequence[int] | None = None) -> Sequence[ErasureRequest]:
        query = select(REQUESTS).where(REQUESTS.c.state == PENDING).order_by(REQUESTS.c.id)
        if client_ids is not None:
            query = query.where(REQUESTS.c.client_id.in_(list(client_ids)))
        async with self._sessions() as session:
            return [_request(row) for row in await session.execute(query)]

    async def requests(self, *, limit: int = 100) -> Sequence[ErasureRequest]:
        """The newest requests first (the record shown to an authority)."""
        query = select(REQUESTS).order_by(REQUESTS.c.id.desc()).limit(limit)
        async with self._sessions() as session:
            return [_request(row) for row in await session.execute(query)]

    async def confirm(self, request_id: int, part: str, removed: Mapping[str, int]) -> None:
        async with self._sessions.begin() as session:
            request = await self._get(session, request_id, lock=True)
            merged = {**request.removed, part: dict(removed)}
            await session.execute(
                update(REQUESTS).where(REQUESTS.c.id == request_id).values(removed=merged)
            )

    async def failed(self, request_id: int, error: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(REQUESTS)
                .where(REQUESTS.c.id == request_id)
                .values(error=error[:2000], tries=REQUESTS.c.tries + 1)
            )

    async def finish(self, request_id: int) -> ErasureRequest:
        async with self._sessions.begin() as session:
            await session.execute(
                update(REQUESTS)
                .where(REQUESTS.c.id == request_id, REQUESTS.c.state == PENDING)
                .values(state=DONE, finished_at=utcnow(), error=None, tries=REQUESTS.c.tries + 1)
            )
            return await self._get(session, request_id)

    async def _get(
        self, session: AsyncSession, request_id: int, *, lock: bool = False
    ) -> ErasureRequest:
        query = select(REQUESTS).where(REQUESTS.c.id == request_id)
        if lock:
            query = query.with_for_update()
        row = (await session.execute(query)).first()
        if row is None:
            raise NotFound(f"no erasure request #{request_id}")
        return _request(row)

    async def suppression_key(self) -> bytes:
        if self._key is None:
            self._key = await self._load_key()
        return self._key

    async def _load_key(self) -> bytes:
        """The configured key (its fingerprint recorded on first use and checked after), or
        the one generated by the first caller and kept in the database."""
        fresh = self._configured or secrets.token_hex(32).encode()
        async with self._sessions.begin() as session:
            await session.execute(
                insert_ignore(await session.connection(), KEYS),
                [
                    {
                        "name": KEY_NAME,
                        "value": None if self._configured else fresh.decode(),
                        "fingerprint": _fingerprint(fresh),
                        "created_at": utcnow(),
                    }
                ],
            )
            row = (await session.execute(select(KEYS).where(KEYS.c.name == KEY_NAME))).one()
        key = self._configured or (row.value.encode() if row.value else None)
        if key is None or _fingerprint(key) != row.fingerprint:
            raise ConfigError(
                "the erased clients' suppression list was made with another key: set "
                "POVTOR_ERASURE_KEY back to the key used before (docs/legal.md)"
            )
        return key

    async def suppression_list(self) -> SuppressionList:
        """Empty (and no key made) while nobody was erased."""
        async with self._sessions() as session:
            digests = frozenset((await session.scalars(select(SUPPRESSIONS.c.digest))).all())
        if not digests:
            return SuppressionList(b"")
        return SuppressionList(await self.suppression_key(), digests)
