"""``AttemptQueue.claim`` over real SQLite and PostgreSQL: what a claim leases and what it
brings back (PostgreSQL runs its own statement, outside a transaction)."""

from __future__ import annotations

from datetime import timedelta

from crm_sync.history.store import SqlHistoryStore
from outreach.queue import AttemptQueue, NewAttempt
from povtor.db import session_factory
from povtor.domain import AttemptState, ChannelKind, Purpose
from tests.integration.outreach.conftest import Clock, attempt, new_client


async def test_a_claim_leases_due_attempts_in_due_order_without_paused_purposes(
    engine, store: SqlHistoryStore, queue: AttemptQueue, clock: Clock
) -> None:
    first, second, third = [await new_client(store, f"C{i}") for i in range(3)]
    now = clock()
    await queue.add(
        [
            attempt(first, "later", not_before=now - timedelta(minutes=1)),
            NewAttempt(
                second,
                Purpose.WINBACK,
                ChannelKind.TELEGRAM,
                now - timedelta(minutes=5),
                "earlier",
                reason="test",
                payload={"order": "A-1", "sum": 1500},
            ),
            attempt(third, "paused", purpose=Purpose.NPS, not_before=now - timedelta(hours=1)),
            attempt(third, "not-yet", not_before=now + timedelta(minutes=1)),
        ],
        now,
    )
    await queue.set_paused(Purpose.NPS, True, by="manager", now=now)

    [earlier] = await queue.claim(now, 1)
    assert earlier.attempt.idempotency_key == "earlier"
    assert earlier.attempt.client_id == second
    assert earlier.attempt.purpose is Purpose.WINBACK
    assert earlier.attempt.channel is ChannelKind.TELEGRAM
    assert earlier.attempt.state is AttemptState.CLAIMED
    assert earlier.attempt.not_before == now - timedelta(minutes=5)
    assert earlier.attempt.payload == {"order": "A-1", "sum": 1500}
    assert earlier.attempt.reason == "test"
    assert (earlier.resumed, earlier.takeovers, earlier.fallback_of) == (False, 0, None)

    [later] = await queue.claim(now, 10)  # the paused purpose and the future one stay
    assert later.attempt.idempotency_key == "later"
    assert later.attempt.payload == {}
    assert later.token
    assert later.token != earlier.token

    other = AttemptQueue(session_factory(engine), worker_id="w2", lease=timedelta(seconds=60))
    assert await other.claim(now, 10) == []  # leased: nobody else takes them
    clock.advance(timedelta(seconds=61))
    taken = await other.take_over_expired(clock(), 10)  # the lease was this worker's
    assert sorted(c.attempt.idempotency_key for c in taken) == ["earlier", "later"]


async def test_claims_of_a_batch_come_in_due_order(
    store: SqlHistoryStore, queue: AttemptQueue, clock: Clock
) -> None:
    cid = await new_client(store, "C1")
    now = clock()
    minutes = [7, 3, 9, 1, 5]
    await queue.add(
        [attempt(cid, f"k{m}", not_before=now - timedelta(minutes=m)) for m in minutes], now
    )
    claims = await queue.claim(now, 10)
    assert [c.attempt.idempotency_key for c in claims] == ["k9", "k7", "k5", "k3", "k1"]
    assert len({c.token for c in claims}) == 1
