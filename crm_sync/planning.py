"""Set-based reads for the outreach planner over the history store's tables.

Implements ``povtor.ports.PlanningSource`` (who is due for a reorder reminder, an NPS survey,
a win-back check-in) and ``povtor.ports.ClientLookup`` (a batch of clients in one round trip).
Everything is computed in SQL over keyset ranges of client ids; both SQLite and PostgreSQL run
the same window-function queries, with the date arithmetic written per dialect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.convert import client_from_row
from crm_sync.tables import ClientPhoneRow, ClientRow, ConsentRow
from povtor.domain import Client


class SqlPlanningSource:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.dialect: str = sessions.kw["bind"].dialect.name

    # -- ClientLookup ---------------------------------------------------------------------------

    async def get_clients(self, client_ids: Sequence[int]) -> Mapping[int, Client]:
        ids = list(client_ids)
        if not ids:
            return {}
        async with self._sessions() as session:
            rows = (await session.scalars(select(ClientRow).where(ClientRow.id.in_(ids)))).all()
            phones: dict[int, list[str]] = {}
            for p in await session.execute(
                select(ClientPhoneRow.client_id, ClientPhoneRow.phone)
                .where(ClientPhoneRow.client_id.in_(ids))
                .order_by(ClientPhoneRow.client_id, ClientPhoneRow.position, ClientPhoneRow.id)
            ):
                phones.setdefault(p.client_id, []).append(p.phone)
            consents: dict[int, list[ConsentRow]] = {}
            for c in await session.scalars(
                select(ConsentRow).where(ConsentRow.client_id.in_(ids))
            ):
                consents.setdefault(c.client_id, []).append(c)
        return {
            r.id: client_from_row(r, phones.get(r.id, []), consents.get(r.id, [])) for r in rows
        }
