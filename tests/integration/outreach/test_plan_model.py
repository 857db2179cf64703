"""The planner's whole pass against a model of the planning rules, on a varied generated history.

The model below restates the rules (``PlanningRules``, ``ContactRules``, the consent law in
``outreach.permissions``) in plain Python over the generated data, client by client: the median
gap between consecutive orders (per category for reorders, over all orders for win-back), the
lead and grace periods, the NPS window, the win-back thresholds, opt-out, service and advertising
consents, the channel preference, Telegram links and quiet hours. The planner must write exactly
the attempts the model expects, on SQLite and PostgreSQL, whatever SQL it uses to find them.
"""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.planning_source import SqlPlanningSource
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from outreach.hours import next_allowed
from outreach.planner import Planner
from outreach.queue import AttemptQueue
from outreach.rules import ContactRules
from outreach.tables import AttemptRow
from povtor.db import session_factory, table_of
from povtor.domain import ChannelKind, ConsentChannel, EventKind, OrderItem
from povtor.ports import NewEvent, NewNpsResponse, PlanningRules

AS_OF = datetime(2026, 3, 3, 9, 17, 23, tzinfo=UTC)  # a Tuesday, 12:17 in Moscow
RULES = PlanningRules()
CONTACT = ContactRules()
ZONES = ("Europe/Moscow", "Asia/Kamchatka", "Europe/Kaliningrad", "Asia/Novosibirsk")
CATEGORIES = (None, "кофе", "чай", "посуда")
DAY = 86400.0


@dataclass
class Model:
    """What the generator made for one client, as the rules see it."""

    ext: str
    zone: str
    preferred: ChannelKind | None
    linked: bool
    reachable: bool
    opted_out: bool
    service: dict[ConsentChannel, bool]
    ads: dict[ConsentChannel, bool]
    orders: list[tuple[datetime, str | None, datetime | None]] = field(default_factory=list)
    answered: datetime | None = None
    surveyed: datetime | None = None
    client_id: int = 0


def days(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / DAY


def cycle_of(placed: list[datetime]) -> tuple[float, datetime, int]:
    """The client's own cycle: the median gap (at least the minimum), else the fallback."""
    placed = sorted(placed)
    gaps = [days(b, a) for a, b in itertools.pairwise(placed)]
    cycle = (
        max(statistics.median(gaps), float(RULES.reorder_min_cycle_days))
        if gaps
        else float(RULES.reorder_fallback_cycle_days)
    )
    return cycle, placed[-1], len(placed)


def channel_for(m: Model, advertising: bool) -> ChannelKind | None:
    """Preferred channel if permitted, else a reachable linked Telegram, else a call."""

    def ok(kind: ChannelKind) -> bool:
        key = ConsentChannel(kind.value)
        if m.service.get(key) is False or (CONTACT.require_consent and key not in m.service):
            return False
        if not advertising:
            return True
        return m.ads.get(key, not CONTACT.require_ad_consent)

    telegram = m.linked and m.reachable and ok(ChannelKind.TELEGRAM)
    if m.preferred is ChannelKind.CALL and ok(ChannelKind.CALL):
        return ChannelKind.CALL
    if telegram:
        return ChannelKind.TELEGRAM
    return ChannelKind.CALL if ok(ChannelKind.CALL) else None


def expected(models: list[Model]) -> dict[str, tuple[Any, ...]]:
    """Idempotency key -> (client, purpose, channel, not_before, reason, payload)."""
    out: dict[str, tuple[Any, ...]] = {}

    def add(m: Model, purpose: str, due: datetime, key: str, reason: str, data: dict) -> None:
        channel = channel_for(m, advertising=purpose != "nps")
        if channel is None:
            return
        when = next_allowed(max(due, AS_OF), m.zone, channel, CONTACT)
        payload = {"purpose": purpose, **data}
        if purpose == "winback":
            payload["questions"] = ["why_stopped", "what_would_bring_back"]
        out[key] = (m.client_id, purpose, channel.value, when, reason, payload)

    for m in models:
        if m.opted_out or not m.orders:
            continue
        # Reorder: the most urgent category (by days to its expected date, then name) in range.
        due = []
        for grp in sorted({c or "" for _, c, _ in m.orders}):
            cycle, last, n = cycle_of([p for p, c, _ in m.orders if (c or "") == grp])
            since = days(AS_OF, last)
            if cycle - RULES.reorder_lead_days <= since < cycle + RULES.reorder_grace_days:
                due.append((cycle - since, grp, cycle, last, n))
        if due:
            _, grp, cycle, last, n = min(due)
            at = last + timedelta(days=cycle)
            reason = (
                f"reorder expected {at.date().isoformat()}: cycle {cycle:.0f} d"
                + (" (median)" if n > 1 else " (fallback, one order)")
                + (f", category {grp}" if grp else "")
                + f", last order {last.date().isoformat()}"
            )
            data = {"category": grp or None, "cycle_days": round(cycle, 1), "expected": str(at)}
            key = f"reorder:{m.client_id}:{grp or '-'}:{last.date().isoformat()}"
            add(m, "reorder", at - timedelta(days=RULES.reorder_lead_days), key, reason, data)
        # NPS: the last delivery became due within the grace period, no score or survey lately.
        delivered = [d for _, _, d in m.orders if d is not None]
        if delivered:
            last_delivery = max(delivered)
            since = days(AS_OF, last_delivery)
            recent = [
                t
                for t in (m.answered, m.surveyed)
                if t is not None and days(AS_OF, t) < RULES.nps_window_days
            ]
            after = RULES.nps_after_delivery_days
            if after <= since < after + RULES.nps_grace_days and not recent:
                day = last_delivery.date().isoformat()
                add(
                    m,
                    "nps",
                    last_delivery + timedelta(days=after),
                    f"nps:{m.client_id}:{day}",
                    f"NPS: order delivered {day}, no score in {RULES.nps_window_days} d",
                    {"delivered": str(last_delivery)},
                )
        # Win-back: silent past a threshold and past 1.5 own cycles (or one order only).
        cycle, last, n = cycle_of([p for p, _, _ in m.orders])
        since = days(AS_OF, last)
        thresholds = sorted(RULES.winback_after_days)
        if thresholds[0] <= since < RULES.winback_max_silence_days and (
            n == 1 or since >= cycle * RULES.winback_overdue_factor
        ):
            crossed = max(t for t in thresholds if t <= since)
            day = last.date().isoformat()
            add(
                m,
                "winback",
                last + timedelta(days=crossed),
                f"winback:{m.client_id}:{day}:{crossed}",
                f"win-back: no order for {since:.0f} d since {day} (check-in {crossed} d)",
                {"silence_days": int(since), "threshold_days": crossed},
            )
    return out


def generate(rng: random.Random, count: int) -> list[Model]:
    """Clients of every kind the rules tell apart, with irregular order histories."""
    models = []
    for i in range(count):
        grants = {ConsentChannel.CALL: True, ConsentChannel.TELEGRAM: True}
        models.append(
            Model(
                ext=f"M{i:04d}",
                zone=rng.choice(ZONES),
                preferred=ChannelKind.CALL if rng.random() < 0.2 else None,
                linked=rng.random() < 0.4,
                reachable=rng.random() < 0.85,
                opted_out=rng.random() < 0.07,
                service={k: False for k in grants if rng.random() < 0.1},
                ads={k: rng.random() < 0.85 for k in grants if rng.random() < 0.9},
            )
        )
        m = models[-1]
        cycle = rng.uniform(5, 120)
        regular = rng.random() < 0.5  # near-constant gaps: the median is close to ``cycle``
        silence = rng.choice(
            (
                rng.uniform(0.5, 900),
                cycle - RULES.reorder_lead_days + rng.uniform(-1, 1),  # reorder window edges
                cycle + RULES.reorder_grace_days + rng.uniform(-1, 1),
                rng.choice(RULES.winback_after_days) + rng.uniform(-1, 1),  # win-back edges
                RULES.winback_max_silence_days + rng.uniform(-1, 1),
                cycle * RULES.winback_overdue_factor + rng.uniform(-1, 1),
            )
        )
        at = AS_OF - timedelta(days=max(silence, 0.1))
        for n in range(rng.choice((1, 1, 2, 3, 4, 6, 9))):
            category = rng.choice(CATEGORIES)
            delivered: datetime | None = at + timedelta(days=rng.uniform(0.2, 6))
            if n == 0 and rng.random() < 0.4:  # the last delivery at the NPS window's edges
                edge = RULES.nps_after_delivery_days + rng.choice((0, RULES.nps_grace_days))
                delivered = AS_OF - timedelta(days=edge + rng.uniform(-0.5, 0.5))
            elif rng.random() < 0.3:
                delivered = None
            m.orders.append((at, category, delivered if delivered and delivered < AS_OF else None))
            spread = rng.uniform(0.97, 1.03) if regular else rng.uniform(0.4, 1.8)
            at -= timedelta(days=cycle * spread, seconds=rng.randint(0, 3600))
        window = RULES.nps_window_days
        if rng.random() < 0.25:
            m.answered = AS_OF - timedelta(days=rng.choice((rng.uniform(1, 200), window + 0.3)))
        if rng.random() < 0.15:
            m.surveyed = AS_OF - timedelta(days=rng.choice((rng.uniform(1, 200), window - 0.3)))
    return models


async def load(store: SqlHistoryStore, models: list[Model]) -> None:
    for m in models:
        client = await store.create_client(
            ClientInput(
                external_id=m.ext,
                name="Клиент",
                phones=("+79161234567",),
                timezone=m.zone,
                preferred_channel=m.preferred,
                consents=tuple((k, v, "test") for k, v in m.service.items()),
                ad_consents=tuple((k, v, "test") for k, v in m.ads.items()),
            )
        )
        m.client_id = client.id
        if m.linked:
            await store.link_telegram(client.id, 1000 + client.id)
            if not m.reachable:
                await store.set_telegram_reachable(client.id, False)
        if m.opted_out:
            await store.set_opt_out(client.id, True, source="test")
        for n, (placed, category, delivered) in enumerate(m.orders):
            await store.add_order(
                OrderInput(
                    external_id=f"{m.ext}-{n}",
                    client_external_id=m.ext,
                    placed_at=placed.replace(microsecond=0),
                    amount=Decimal(100 + n),
                    delivered_at=delivered.replace(microsecond=0) if delivered else None,
                    items=(OrderItem("товар", category=category),) if category else (),
                )
            )
        m.orders = [
            (p.replace(microsecond=0), c, d.replace(microsecond=0) if d else None)
            for p, c, d in m.orders
        ]
        if m.answered is not None:
            await store.record_nps(
                NewNpsResponse(client.id, 8, ChannelKind.CALL, answered_at=m.answered)
            )
        if m.surveyed is not None:
            await store.append_event(
                NewEvent(
                    client.id,
                    EventKind.CALL,
                    "опрос",
                    at=m.surveyed,
                    data={"purpose": "nps"},
                )
            )


async def test_a_planning_pass_writes_exactly_the_attempts_the_rules_call_for(
    engine: AsyncEngine, store: SqlHistoryStore
) -> None:
    models = generate(random.Random(17), 150)
    await load(store, models)
    want = expected(models)
    assert {v[1] for v in want.values()} == {"reorder", "nps", "winback"}  # all kinds occur
    assert len({v[2] for v in want.values()}) == 2  # calls and Telegram messages
    sessions = session_factory(engine)
    queue = AttemptQueue(sessions, worker_id="w1", lease=timedelta(seconds=60))
    planner = Planner(
        SqlPlanningSource(sessions), queue, CONTACT, RULES, clock=lambda: AS_OF, batch_size=37
    )
    assert await planner.run_once() == len(want)
    a = table_of(AttemptRow)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    a.c.idempotency_key,
                    a.c.client_id,
                    a.c.purpose,
                    a.c.channel,
                    a.c.not_before,
                    a.c.reason,
                    a.c.payload,
                )
            )
        ).all()
    got = {r[0]: tuple(r[1:]) for r in rows}
    assert set(got) == set(want)
    for key, (client, purpose, channel, when, reason, payload) in want.items():
        g_client, g_purpose, g_channel, g_when, g_reason, g_payload = got[key]
        assert (g_client, g_purpose, g_channel, g_reason) == (client, purpose, channel, reason)
        # Day fractions differ in the last bits between SQL engines: within a millisecond.
        assert abs(g_when - when) < timedelta(milliseconds=1), key
        if "expected" in payload:
            at = datetime.fromisoformat(g_payload.pop("expected"))
            assert abs(at - datetime.fromisoformat(payload.pop("expected"))) < timedelta(
                milliseconds=1
            )
        assert g_payload == payload, key
    assert await planner.run_once() == 0  # the same occasions are never planned twice
