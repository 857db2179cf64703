"""The outreach engine as the dashboard steers it (``povtor.ports.OutreachControl``): today's
plan, campaigns waiting for approval, paused purposes, results, the caps in force, and an
audit log of every manager's action."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from outreach.pacing import hour_and_day_start, matching
from outreach.queue import AttemptQueue, pace_counts
from outreach.rules import ContactRules
from outreach.tables import (
    ActionRow,
    AttemptOutcomeRow,
    AttemptRow,
    CampaignRow,
    ContactRow,
)
from povtor.db import table_of, utcnow
from povtor.domain import AttemptState, ChannelKind, EventKind, Purpose
from povtor.ports import (
    CampaignView,
    CapInForce,
    HistoryStore,
    NewEvent,
    OutreachAction,
    OutreachResults,
    PlannedContact,
)

log = logging.getLogger("povtor.audit")
A = table_of(AttemptRow)
O = table_of(AttemptOutcomeRow)  # noqa: E741
C = table_of(ContactRow)
K = table_of(CampaignRow)
L = table_of(ActionRow)
PLAN_STATES = (
    AttemptState.PLANNED.value,
    AttemptState.RETRY_SCHEDULED.value,
    AttemptState.CLAIMED.value,
    AttemptState.IN_PROGRESS.value,
    AttemptState.PENDING_APPROVAL.value,
)
FAILURE_KINDS = ("failed", "unreachable", "rejected")
PURPOSE_RU = {Purpose.REORDER: "повторный заказ", Purpose.NPS: "NPS", Purpose.WINBACK: "возврат"}
TIMELINE_CHUNK = 1000


class SqlOutreachControl:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        queue: AttemptQueue,
        history: HistoryStore,
        rules: ContactRules,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._queue = queue
        self._history = history
        self._rules = rules
        self._clock = clock

    async def plan(self, until: datetime, *, limit: int = 200) -> Sequence[PlannedContact]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(A)
                .where(
                    A.c.state.in_(PLAN_STATES),
                    or_(
                        A.c.not_before < until,
                        A.c.state == AttemptState.PENDING_APPROVAL.value,
                    ),
                )
                .order_by(A.c.not_before, A.c.id)
                .limit(limit)
            )
            return [
                PlannedContact(
                    attempt_id=r.id,
                    client_id=r.client_id,
                    purpose=Purpose(r.purpose),
                    channel=ChannelKind(r.channel),
                    not_before=r.not_before,
                    reason=r.reason,
                    state=AttemptState(r.state),
                )
                for r in rows
            ]

    async def campaigns(self, *, limit: int = 20) -> Sequence[CampaignView]:
        pending_first = case((K.c.state == "pending", 0), else_=1)
        async with self._sessions() as session:
            rows = await session.execute(
                select(K).order_by(pending_first, K.c.id.desc()).limit(limit)
            )
            return [
                CampaignView(
                    id=r.id,
                    purpose=Purpose(r.purpose),
                    state=r.state,
                    attempts=r.attempts,
                    created_at=r.created_at,
                    decided_at=r.decided_at,
                    decided_by=r.decided_by,
                )
                for r in rows
            ]

    async def decide_campaign(self, campaign_id: int, *, approve: bool, by: str) -> int:
        now = self._clock()
        clients = await self._queue.decide_campaign(campaign_id, approve=approve, by=by, now=now)
        action = "approve" if approve else "reject"
        await self._audit(now, by, action, f"campaign:{campaign_id}", f"{len(clients)} clients")
        verb = "одобрена" if approve else "отклонена"
        events = [
            NewEvent(
                client_id=cid,
                kind=EventKind.NOTE,
                summary=f"Рассылка #{campaign_id} {verb}: {by}",
                at=now,
                ref=f"campaign:{campaign_id}",
                data={"campaign": campaign_id, "action": action, "by": by},
                dedup_key=f"campaign:{campaign_id}:{action}:{cid}",
            )
            for cid in sorted(set(clients))
        ]
        for start in range(0, len(events), TIMELINE_CHUNK):
            await self._history.append_events(events[start : start + TIMELINE_CHUNK])
        return len(set(clients))

    async def paused(self) -> Mapping[Purpose, tuple[datetime, str]]:
        return await self._queue.paused()

    async def set_paused(self, purpose: Purpose, paused: bool, *, by: str) -> bool:
        now = self._clock()
        changed = await self._queue.set_paused(purpose, paused, by=by, now=now)
        if changed:
            await self._audit(now, by, "pause" if paused else "resume", f"purpose:{purpose}")
        return changed

    async def results(self, since: datetime) -> OutreachResults:
        async with self._sessions() as session:
            started = {
                r[0]: int(r[1])
                for r in await session.execute(
                    select(C.c.channel, func.count()).where(C.c.at >= since).group_by(C.c.channel)
                )
            }
            outcomes = {
                r[0]: int(r[1])
                for r in await session.execute(
                    select(O.c.kind, func.count())
                    .where(O.c.recorded_at >= since)
                    .group_by(O.c.kind)
                )
            }
            failures = [
                (r[0] or r[1], int(r[2]))
                for r in await session.execute(
                    select(O.c.detail, O.c.kind, func.count())
                    .where(O.c.recorded_at >= since, O.c.kind.in_(FAILURE_KINDS))
                    .group_by(O.c.detail, O.c.kind)
                    .order_by(func.count().desc())
                    .limit(10)
                )
            ]
            skipped = [
                (r[0] or "", int(r[1]))
                for r in await session.execute(
                    select(A.c.last_detail, func.count())
                    .where(
                        A.c.state == AttemptState.GIVEN_UP.value,
                        A.c.last_outcome.is_(None),
                        A.c.finished_at >= since,
                    )
                    .group_by(A.c.last_detail)
                    .order_by(func.count().desc())
                    .limit(10)
                )
            ]
        return OutreachResults(since, started, outcomes, failures, skipped)

    async def caps(self) -> Sequence[CapInForce]:
        now = self._clock()
        hour_start, day_start = hour_and_day_start(now, self._rules.pacing_timezone)
        async with self._sessions() as session:
            counts = await pace_counts(session, hour_start, day_start)
        return [
            CapInForce(rule.label(), rule.per_hour, rule.per_day, *matching(counts, rule))
            for rule in self._rules.pacing
        ]

    async def actions(self, *, limit: int = 20) -> Sequence[OutreachAction]:
        async with self._sessions() as session:
            rows = await session.execute(select(L).order_by(L.c.id.desc()).limit(limit))
            return [OutreachAction(r.at, r.actor, r.action, r.target, r.detail) for r in rows]

    async def _audit(
        self, at: datetime, actor: str, action: str, target: str, detail: str = ""
    ) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                L.insert().values(
                    at=at, actor=actor[:128], action=action, target=target, detail=detail
                )
            )
        log.info("outreach %s %s by %s %s", action, target, actor, detail)
