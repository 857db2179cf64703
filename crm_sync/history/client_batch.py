"""Many clients with their phones and consents, read for a batch (a dispatch round, a page).

PostgreSQL: one statement, the phones and consents gathered per client into arrays by two
lateral subqueries, and the ids passed as one array parameter, so the statement text is the
same whatever the number of clients (asyncpg prepares it once per connection). SQLite: three
plain queries (clients, phones, consents); it has no round trips to save.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from crm_sync.history.convert import client_from_row, consent_from_values
from crm_sync.history.tables import ClientPhoneRow, ClientRow, ConsentRow
from povtor.db import table_of
from povtor.domain import Client, Consent

CLIENTS = table_of(ClientRow)
PHONES = table_of(ClientPhoneRow)
CONSENTS = table_of(ConsentRow)
_ONE_QUERY = text(
    """
    SELECT c.id, c.external_id, c.name, c.email, c.timezone, c.preferred_channel,
           c.telegram_chat_id, c.telegram_reachable, c.opted_out_at, c.created_at, c.updated_at,
           p.phones, k.channels, k.kinds, k.granted, k.sources, k.ats
    FROM unnest(CAST(:ids AS BIGINT[])) AS x(id)
    CROSS JOIN LATERAL (SELECT * FROM clients WHERE id = x.id OFFSET 0) AS c
    LEFT JOIN LATERAL (
        SELECT coalesce(array_agg(phone ORDER BY position, id), '{}') AS phones
        FROM client_phones WHERE client_id = c.id
    ) AS p ON true
    LEFT JOIN LATERAL (
        SELECT coalesce(array_agg(channel ORDER BY channel, kind), '{}') AS channels,
               coalesce(array_agg(kind ORDER BY channel, kind), '{}') AS kinds,
               coalesce(array_agg(granted ORDER BY channel, kind), '{}') AS granted,
               coalesce(array_agg(source ORDER BY channel, kind), '{}') AS sources,
               coalesce(array_agg(at ORDER BY channel, kind), '{}') AS ats
        FROM consents WHERE client_id = c.id
    ) AS k ON true
    """
)


async def load_clients(
    session: AsyncSession | AsyncConnection, client_ids: Sequence[int]
) -> Mapping[int, Client]:
    """The clients among ``client_ids`` that exist, by id; consents by channel, then kind."""
    ids = sorted(set(client_ids))
    if not ids:
        return {}
    bind = session.dialect if isinstance(session, AsyncConnection) else session.get_bind().dialect
    if bind.name == "postgresql":
        found: dict[int, Client] = {}
        for r in await session.execute(_ONE_QUERY, {"ids": ids}):
            parts = zip(r.channels, r.kinds, r.granted, r.sources, r.ats, strict=True)
            found[r.id] = client_from_row(r, r.phones, [consent_from_values(*c) for c in parts])
        return found
    c, k = CLIENTS.c, CONSENTS.c
    rows = list(await session.execute(select(CLIENTS).where(c.id.in_(ids))))
    phones = await load_phones(session, ids)
    consents_of: dict[int, list[Consent]] = {}
    for r in await session.execute(
        select(k.client_id, k.channel, k.kind, k.granted, k.source, k.at)
        .where(k.client_id.in_(ids))
        .order_by(k.client_id, k.channel, k.kind)
    ):
        consents_of.setdefault(r.client_id, []).append(consent_from_values(*r[1:]))
    return {
        r.id: client_from_row(r, phones.get(r.id, ()), consents_of.get(r.id, ())) for r in rows
    }


# built once (a list's page reads it on every request); the ids bound as an expanding IN
_PHONES_OF = (
    select(PHONES.c.client_id, PHONES.c.phone)
    .where(PHONES.c.client_id.in_(bindparam("ids", expanding=True)))
    .order_by(PHONES.c.client_id, PHONES.c.position, PHONES.c.id)
)


async def load_phones(
    db: AsyncSession | AsyncConnection, client_ids: Sequence[int]
) -> dict[int, tuple[str, ...]]:
    """The phones of these clients, primary first, in one read of one table."""
    if not client_ids:
        return {}
    found: dict[int, list[str]] = {}
    for client_id, phone in await db.execute(_PHONES_OF, {"ids": list(client_ids)}):
        found.setdefault(client_id, []).append(phone)
    return {client_id: tuple(numbers) for client_id, numbers in found.items()}
