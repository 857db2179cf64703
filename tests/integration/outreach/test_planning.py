"""Planning SQL over real SQLite and PostgreSQL: median cycles, categories, NPS windows,
win-back silences, keyset pages; and the planner writing attempts once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from crm_sync.history.planning_source import SqlPlanningSource
from crm_sync.history.store import OrderInput, SqlHistoryStore
from outreach.planner import Planner
from outreach.queue import AttemptQueue
from outreach.rules import ContactRules
from povtor.domain import Candidate, ChannelKind, EventKind, OrderItem, Purpose
from povtor.ports import NewEvent, NewNpsResponse, PlanningRules
from tests.integration.outreach.conftest import NOON_MSK, new_client

AS_OF = NOON_MSK
RULES = PlanningRules()


async def orders(
    store: SqlHistoryStore,
    ext: str,
    days_ago: list[float],
    *,
    category: str | None = None,
    delivered_after: float | None = None,
) -> None:
    for i, ago in enumerate(days_ago):
        placed = AS_OF - timedelta(days=ago)
        await store.add_order(
            OrderInput(
                external_id=f"{ext}-{category}-{i}-{ago}",
                client_external_id=ext,
                placed_at=placed,
                amount=Decimal(100),
                delivered_at=placed + timedelta(days=delivered_after)
                if delivered_after is not None
                else None,
                items=(OrderItem("товар", category=category),) if category else (),
            )
        )


async def all_candidates(source: SqlPlanningSource, purpose: Purpose, limit: int = 1000):
    found: list[Candidate] = []
    after: int | None = 0
    while after is not None:
        page = await source.due(AS_OF, RULES, (purpose,), after_client_id=after, limit=limit)
        assert set(page.candidates) == {purpose}  # the purposes asked, no other
        found += page.candidates[purpose]
        after = page.next_after
    return {c.external_id: c for c in found}


async def test_reorder_is_due_a_lead_time_before_the_client_own_median_cycle(
    store: SqlHistoryStore, lookup: SqlPlanningSource
) -> None:
    await new_client(store, "due")
    await orders(store, "due", [88, 58, 28])  # every 30 days, last 28 days ago
    await new_client(store, "early")
    await orders(store, "early", [70, 40, 10])
    await new_client(store, "median")  # gaps 10, 90, 20: the median (20) ignores the outlier
    await orders(store, "median", [138, 128, 38, 18])
    await new_client(store, "single")  # one order: the fallback cycle (30 d)
    await orders(store, "single", [28])
    await new_client(store, "late")  # 30 d cycle, last 60 d ago: past the grace period
    await orders(store, "late", [120, 90, 60])
    opted = await new_client(store, "opted")
    await orders(store, "opted", [88, 58, 28])
    await store.set_opt_out(opted, True, source="test")

    found = await all_candidates(lookup, Purpose.REORDER)
    assert set(found) == {"due", "median", "single"}
    assert found["due"].data["cycle_days"] == 30.0
    assert found["median"].data["cycle_days"] == 20.0
    assert "fallback" in found["single"].reason
    assert found["due"].due_at == AS_OF - timedelta(days=28) + timedelta(days=30 - 3)
    assert found["due"].key.startswith(f"reorder:{found['due'].client_id}:-:")


async def test_reorder_uses_the_category_cycle_where_items_are_known(
    store: SqlHistoryStore, lookup: SqlPlanningSource
) -> None:
    await new_client(store, "coffee")
    await orders(store, "coffee", [28, 18, 8], category="кофе")  # every 10 days
    await orders(store, "coffee", [300, 5], category="кофемашина")  # rare, just bought
    found = await all_candidates(lookup, Purpose.REORDER)
    assert found["coffee"].data["category"] == "кофе"
    assert "category кофе" in found["coffee"].reason


async def test_nps_after_delivery_once_in_the_window(
    store: SqlHistoryStore, lookup: SqlPlanningSource
) -> None:
    await new_client(store, "fresh")
    await orders(store, "fresh", [6], delivered_after=2)  # delivered 4 days ago
    asked = await new_client(store, "asked")
    await orders(store, "asked", [6], delivered_after=2)
    await store.record_nps(
        NewNpsResponse(asked, 9, ChannelKind.CALL, answered_at=AS_OF - timedelta(days=30))
    )
    long_ago = await new_client(store, "long_ago")
    await orders(store, "long_ago", [6], delivered_after=2)
    await store.record_nps(
        NewNpsResponse(long_ago, 9, ChannelKind.CALL, answered_at=AS_OF - timedelta(days=100))
    )
    await new_client(store, "too_soon")
    await orders(store, "too_soon", [2], delivered_after=1)
    await new_client(store, "undelivered")
    await orders(store, "undelivered", [6])
    found = await all_candidates(lookup, Purpose.NPS)
    assert set(found) == {"fresh", "long_ago"}


async def test_winback_after_a_silence_longer_than_the_own_cycle(
    store: SqlHistoryStore, lookup: SqlPlanningSource
) -> None:
    await new_client(store, "silent")
    await orders(store, "silent", [140, 120, 100])  # every 20 d, silent 100 d: the 90 d check
    await new_client(store, "slow")
    await orders(store, "slow", [220, 130, 40])  # every 90 d: 40 d of silence is normal
    await new_client(store, "gone")
    await orders(store, "gone", [400])
    found = await all_candidates(lookup, Purpose.WINBACK)
    assert set(found) == {"silent", "gone"}
    assert found["silent"].data["threshold_days"] == 90
    assert found["gone"].data["threshold_days"] == 180
    assert found["silent"].key.endswith(":90")


async def test_keyset_pages_cover_every_client_once(
    store: SqlHistoryStore, lookup: SqlPlanningSource
) -> None:
    for i in range(7):
        await new_client(store, f"c{i}")
        await orders(store, f"c{i}", [88, 58, 28])
    big = await all_candidates(lookup, Purpose.REORDER, limit=1000)
    small = await all_candidates(lookup, Purpose.REORDER, limit=2)
    assert set(big) == set(small) == {f"c{i}" for i in range(7)}


async def test_planner_writes_each_occasion_once_and_asks_nps_once_per_window(
    store: SqlHistoryStore, lookup: SqlPlanningSource, queue: AttemptQueue
) -> None:
    await new_client(store, "due", chat=101)
    await orders(store, "due", [88, 58, 28])
    await new_client(store, "fresh")
    await orders(store, "fresh", [6], delivered_after=2)
    planner = Planner(lookup, queue, ContactRules(), RULES, clock=lambda: AS_OF)
    assert await planner.run_once() == 2
    assert await planner.run_once() == 0
    # A later delivery inside the 90-day window is not surveyed again.
    await orders(store, "fresh", [3], delivered_after=0)
    later = Planner(lookup, queue, ContactRules(), RULES, clock=lambda: AS_OF + timedelta(days=3))
    items = [i async for page in later.pages(AS_OF + timedelta(days=3)) for i in page]
    assert not [i for i in items if i.candidate.purpose is Purpose.NPS]


async def test_plan_items_pick_the_channel_and_the_first_allowed_time(
    store: SqlHistoryStore, lookup: SqlPlanningSource, queue: AttemptQueue
) -> None:
    await new_client(store, "tg", chat=101)
    await orders(store, "tg", [88, 58, 28])
    await new_client(store, "far", tz="Asia/Kamchatka")  # 21:00 there: call tomorrow 09:00
    await orders(store, "far", [88, 58, 28])
    planner = Planner(lookup, queue, ContactRules(), RULES, clock=lambda: AS_OF)
    items = {i.candidate.external_id: i async for page in planner.pages(AS_OF) for i in page}
    assert items["tg"].channel is ChannelKind.TELEGRAM
    assert items["tg"].not_before == AS_OF
    assert items["far"].channel is ChannelKind.CALL
    assert items["far"].not_before == AS_OF + timedelta(hours=12)
    line = items["far"].to_json()
    assert list(line) == ["client", "purpose", "channel", "not_before", "reason"]
    assert line["not_before"] == "2026-03-03T21:00:00+00:00"


async def test_a_client_surveyed_lately_by_call_is_not_surveyed_again(
    store: SqlHistoryStore, lookup: SqlPlanningSource
) -> None:
    called = await new_client(store, "called")  # an NPS call ten days ago, no score given
    await orders(store, "called", [6], delivered_after=2)
    await store.append_event(
        NewEvent(called, EventKind.CALL, "Звонок: разговор", at=AS_OF - timedelta(days=10),
                 data={"purpose": "nps", "outcome": "answered"})
    )  # fmt: skip
    messaged = await new_client(store, "messaged")  # asked in Telegram 100 days ago: again
    await orders(store, "messaged", [6], delivered_after=2)
    await store.append_event(
        NewEvent(messaged, EventKind.MESSAGE_OUT, "Telegram: опрос",
                 at=AS_OF - timedelta(days=100), data={"purpose": "nps"})
    )  # fmt: skip
    offered = await new_client(store, "offered")  # a reorder call is not a survey
    await orders(store, "offered", [6], delivered_after=2)
    await store.append_event(
        NewEvent(offered, EventKind.CALL, "Звонок", at=AS_OF - timedelta(days=10),
                 data={"purpose": "reorder"})
    )  # fmt: skip
    found = await all_candidates(lookup, Purpose.NPS)
    assert set(found) == {"messaged", "offered"}


async def test_no_winback_after_the_silence_ceiling(
    store: SqlHistoryStore, lookup: SqlPlanningSource
) -> None:
    await new_client(store, "gone")
    await orders(store, "gone", [400])
    await new_client(store, "lost")
    await orders(store, "lost", [800])  # over two years: not contacted at all
    found = await all_candidates(lookup, Purpose.WINBACK)
    assert set(found) == {"gone"}


async def test_a_client_erased_on_request_and_created_again_is_not_planned(
    store: SqlHistoryStore, lookup: SqlPlanningSource, queue: AttemptQueue, engine
) -> None:
    from crm_sync.history.erasure_ledger import SqlErasureLedger
    from povtor.db import session_factory
    from povtor.suppression import EXTERNAL_ID, digest

    ledger = SqlErasureLedger(session_factory(engine))
    await ledger.suppress([digest(await ledger.suppression_key(), EXTERNAL_ID, "back")])
    for ext in ("back", "other"):  # "back": re-created around the import (a CRM, by hand)
        await new_client(store, ext, chat=101 if ext == "back" else 102)
        await orders(store, ext, [88, 58, 28])
    planner = Planner(lookup, queue, ContactRules(), RULES, clock=lambda: AS_OF, erased=ledger)
    planned = {i.candidate.external_id async for page in planner.pages(AS_OF) for i in page}
    unguarded = Planner(lookup, queue, ContactRules(), RULES, clock=lambda: AS_OF)
    assert {i.candidate.external_id async for p in unguarded.pages(AS_OF) for i in p} == {
        "back",
        "other",
    }
    assert planned == {"other"}
