"""Outreach keeps client ids without a foreign key to the store's clients (outreach_0005): a
client's attempts, their outcomes and contacts go through ``ClientErasure``, and an attempt
whose client is gone from the store is given up, never executed."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from outreach.listing import AttemptListing
from outreach.queue import AttemptQueue
from povtor.db import session_factory
from povtor.domain import AttemptState
from povtor.ports import ClientErasure, ErasureSubject
from tests.integration.outreach.conftest import Clock, attempt, new_client

COUNTS = (
    "SELECT (SELECT count(*) FROM outreach_attempts WHERE client_id = :c),"
    " (SELECT count(*) FROM outreach_outcomes o JOIN outreach_attempts a"
    "  ON a.id = o.attempt_id WHERE a.client_id = :c),"
    " (SELECT count(*) FROM outreach_contacts WHERE client_id = :c)"
)


async def test_erasing_clients_removes_their_attempts_outcomes_and_contacts_only(
    engine: AsyncEngine, store: SqlHistoryStore, queue: AttemptQueue, call, make_dispatcher, clock
) -> None:
    erased, kept = await new_client(store, "C1"), await new_client(store, "C2")
    await queue.add([attempt(erased, "a:1"), attempt(kept, "b:1")], clock())
    await make_dispatcher(call).run_until_idle()  # each answered: an outcome and a contact
    await queue.add([attempt(erased, "a:2")], clock())  # one still planned
    async with engine.connect() as conn:
        before = [
            tuple((await conn.execute(text(COUNTS), {"c": c})).one()) for c in (erased, kept)
        ]
    assert before == [(2, 1, 1), (1, 1, 1)]

    erasure: ClientErasure = queue
    subjects = [ErasureSubject(erased), ErasureSubject(999)]
    assert await erasure.erase_clients(subjects) == {"attempts": 2, "outcomes": 1, "contacts": 1}
    assert await erasure.erase_clients(subjects[:1]) == {
        "attempts": 0,
        "outcomes": 0,
        "contacts": 0,
    }
    assert await erasure.erase_clients([]) == {"attempts": 0, "outcomes": 0, "contacts": 0}
    async with engine.connect() as conn:
        after = [tuple((await conn.execute(text(COUNTS), {"c": c})).one()) for c in (erased, kept)]
        outcomes = await conn.scalar(text("SELECT count(*) FROM outreach_outcomes"))
    assert after == [(0, 0, 0), (1, 1, 1)]
    assert outcomes == 1


async def test_an_attempt_whose_client_is_gone_is_given_up_not_executed(
    engine: AsyncEngine,
    store: SqlHistoryStore,
    queue: AttemptQueue,
    call,
    make_dispatcher,
    clock: Clock,
) -> None:
    gone = await new_client(store, "C1")
    assert await queue.add([attempt(gone, "k"), attempt(gone + 100, "unknown")], clock()) == 2
    async with engine.begin() as conn:  # the store's client deleted, by hand
        await conn.execute(text("DELETE FROM clients WHERE id = :c"), {"c": gone})
    await make_dispatcher(call).run_until_idle()
    views = await AttemptListing(session_factory(engine)).attempts()
    assert sorted((v.idempotency_key, v.state, v.last_detail) for v in views) == [
        ("k", AttemptState.GIVEN_UP, "client no longer exists"),
        ("unknown", AttemptState.GIVEN_UP, "client no longer exists"),
    ]
    assert call.executed == []
