"""OAuth tokens of a connector kept in the database (``crm_tokens``), so a rotated refresh
token survives restarts. The configured tokens seed the row; configuring new ones (a fresh
authorisation) replaces what is stored, which is recognised by a fingerprint of them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.connectors.amocrm_auth import Tokens
from crm_sync.outbound.tables import CrmTokenRow
from povtor.db import utcnow


def fingerprint(tokens: Tokens) -> str:
    raw = f"{tokens.access_token or ''}\n{tokens.refresh_token or ''}"
    return hashlib.sha256(raw.encode()).hexdigest()


class SqlTokenStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connector: str,
        configured: Tokens,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._connector = connector
        self._configured = configured
        self._seed = fingerprint(configured)
        self._clock = clock

    async def load(self) -> Tokens:
        async with self._sessions.begin() as session:
            row = await session.get(CrmTokenRow, self._connector)
            if row is not None and row.seed == self._seed:
                return Tokens(row.access_token, row.refresh_token, row.expires_at)
            if row is None:
                row = CrmTokenRow(connector=self._connector)
                session.add(row)
            row.seed = self._seed
            row.access_token = self._configured.access_token
            row.refresh_token = self._configured.refresh_token
            row.expires_at = self._configured.expires_at
            row.updated_at = self._clock()
            return self._configured

    async def save(self, tokens: Tokens) -> None:
        async with self._sessions.begin() as session:
            row = (
                await session.scalars(
                    select(CrmTokenRow)
                    .where(CrmTokenRow.connector == self._connector)
                    .with_for_update()
                )
            ).first()
            if row is None:
                row = CrmTokenRow(connector=self._connector, seed=self._seed)
                session.add(row)
            row.access_token = tokens.access_token
            row.refresh_token = tokens.refresh_token
            row.expires_at = tokens.expires_at
            row.updated_at = self._clock()
