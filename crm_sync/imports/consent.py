"""The consent column of a client export: consent to advertising by call and message, with
its date and source, written per batch with its history in the clients' timelines.

A "yes" grants and a "no" refuses advertising for the channels Povtor uses (calls and
Telegram); an empty cell leaves what is stored. A change is written to the timeline once; the
same file imported again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_sync.history.tables import ClientRow, ConsentRow, EventRow
from crm_sync.imports.parse import CellError, CellValue, text
from povtor.db import table_of
from povtor.domain import ConsentChannel, ContactKind, EventKind

if TYPE_CHECKING:  # records.py parses the consent column with this module
    from crm_sync.imports.records import ClientRecord

consents_t = table_of(ConsentRow)
events_t = table_of(EventRow)
clients_t = table_of(ClientRow)
CHANNELS = (ConsentChannel.CALL, ConsentChannel.TELEGRAM)
ADS = ContactKind.ADVERTISING.value
_YES = "да yes y true 1 + v x ✓ согласен согласна согласие есть подписан подписана дано разрешено"
_NO = "нет no n false 0 - отказ отказался отказалась отписан отписана запрещено"
YES = frozenset((*_YES.split(" "), "opt-in"))
NO = frozenset((*_NO.split(" "), "opt-out"))
NO_PHRASES = frozenset({"не согласен", "не согласна", "нет согласия", "не подписан"})


def parse_consent(value: CellValue) -> bool | None:
    """Yes/no in the usual spellings -> True/False; an empty cell -> None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value in (0, 1):
            return bool(value)
        raise CellError(f"согласие {value!r} не распознано (да или нет)")
    raw = " ".join((text(value) or "").casefold().replace("ё", "е").split())
    if not raw:
        return None
    if raw in NO_PHRASES or raw in NO:
        return False
    if raw in YES:
        return True
    raise CellError(f"согласие {raw!r} не распознано (да или нет)")


async def write_consents(
    conn: AsyncConnection, records: Sequence[ClientRecord], *, now: datetime
) -> int:
    """Advertising consents of a batch (last row of an id wins); returns how many changed."""
    given = {r.external_id: r for r in records if r.ad_consent is not None}
    if not given:
        return 0
    ids = dict(
        (
            await conn.execute(
                select(clients_t.c.external_id, clients_t.c.id).where(
                    clients_t.c.external_id.in_(list(given))
                )
            )
        )
        .tuples()
        .all()
    )
    stored = {
        (r.client_id, r.channel): bool(r.granted)
        for r in await conn.execute(
            select(consents_t.c.client_id, consents_t.c.channel, consents_t.c.granted).where(
                consents_t.c.client_id.in_(list(ids.values())), consents_t.c.kind == ADS
            )
        )
    }
    changed: list[int] = []
    rows: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    for ext, record in given.items():
        client_id = ids.get(ext)
        granted = bool(record.ad_consent)
        if client_id is None or all(
            stored.get((client_id, ch.value)) == granted for ch in CHANNELS
        ):
            continue
        at = record.consent_at or now
        source = (f"import:{record.consent_source}" if record.consent_source else "import")[:64]
        changed.append(client_id)
        rows += [
            {"client_id": client_id, "channel": ch.value, "kind": ADS, "granted": granted,
             "source": source, "at": at}
            for ch in CHANNELS
        ]  # fmt: skip
        events.append(
            {
                "client_id": client_id,
                "kind": EventKind.CONSENT.value,
                "at": at,
                "summary": f"Согласие на рекламу (импорт): {'да' if granted else 'нет'}",
                "ref": None,
                "data": {"kind": ADS, "granted": granted, "source": source},
                "dedup_key": None,
            }
        )
    if not changed:
        return 0
    await conn.execute(
        consents_t.delete().where(
            consents_t.c.client_id.in_(changed),
            consents_t.c.kind == ADS,
            consents_t.c.channel.in_([ch.value for ch in CHANNELS]),
        )
    )
    await conn.execute(consents_t.insert(), rows)
    await conn.execute(events_t.insert(), events)
    return len(changed)
