"""``AttemptQueue.add`` stores every column as given, whichever form the statement sends them
in (on PostgreSQL text columns joined by a separator, or arrays when a value holds it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm_sync.history.store import SqlHistoryStore
from outreach.queue import AttemptQueue, NewAttempt
from outreach.tables import AttemptRow
from povtor.db import table_of
from povtor.domain import ChannelKind, Purpose
from tests.integration.outreach.conftest import NOON_MSK, new_client

SEPARATOR = "\x1f"
A = table_of(AttemptRow)


def batch(client_id: int, *, odd: str = "") -> list[NewAttempt]:
    """Attempts with distinct and shared moments, a missing payload, Cyrillic, quotes and an
    empty reason; ``odd`` goes into one reason."""
    later = NOON_MSK + timedelta(hours=5, microseconds=7)
    return [
        NewAttempt(
            client_id,
            Purpose.REORDER,
            ChannelKind.CALL,
            NOON_MSK,
            "k1",
            reason=f'кофе "в зёрнах"{odd}',
            payload={"purpose": "reorder", "category": "кофе\x1f\x1e"},
        ),
        NewAttempt(client_id, Purpose.NPS, ChannelKind.TELEGRAM, later, "k2", reason=""),
        NewAttempt(
            client_id,
            Purpose.WINBACK,
            ChannelKind.CALL,
            NOON_MSK,
            "k3",
            reason="тишина",
            payload={"questions": ["why_stopped"]},
        ),
        NewAttempt(client_id, Purpose.REORDER, ChannelKind.CALL, later, "k4", reason="x"),
    ]


@pytest.mark.parametrize("odd", ["", SEPARATOR], ids=["joined", "arrays"])
async def test_added_attempts_are_stored_as_given(
    store: SqlHistoryStore, queue: AttemptQueue, odd: str
) -> None:
    client_id = await new_client(store, "c1")
    attempts = batch(client_id, odd=odd)
    assert await queue.add(attempts, NOON_MSK) == len(attempts)
    assert await queue.add(attempts, NOON_MSK) == 0  # the keys exist: nothing new
    async with queue._sessions() as session:
        rows = (await session.execute(select(A).order_by(A.c.idempotency_key))).all()
    stored = [
        (r.client_id, r.purpose, r.channel, r.not_before, r.idempotency_key, r.reason, r.payload)
        for r in rows
    ]
    assert stored == [
        (
            a.client_id,
            a.purpose.value,
            a.channel.value,
            a.not_before,
            a.idempotency_key,
            a.reason,
            a.payload or None,
        )
        for a in attempts
    ]
    assert [r.state for r in rows] == ["planned"] * len(attempts)
    assert [r.fallback_of for r in rows] == [None] * len(attempts)
