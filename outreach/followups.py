"""After an outcome: the client's timeline, and the closed loop (a detractor answer or a
complaint becomes a manager task due within 24 hours).

Outcome rows are an outbox: they are recorded with the attempt in one transaction and
followed up here afterwards, so a crash in between only delays the timeline entry. Every write
carries a dedup key, so two workers following up the same outcome write it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from outreach.tables import AttemptOutcomeRow, AttemptRow
from povtor.db import table_of, utcnow
from povtor.domain import ChannelKind, EventKind, NpsGroup, OutcomeKind, Purpose, nps_group
from povtor.lifecycle import wait_for_first
from povtor.ports import NewEvent, NewTask, TaskBook, Timeline


class FollowupHistory(Timeline, TaskBook, Protocol):
    """What follow-ups write: the outcome's timeline entry and the manager's task."""


log = logging.getLogger(__name__)
O = table_of(AttemptOutcomeRow)  # noqa: E741
A = table_of(AttemptRow)
TASK_DUE = timedelta(hours=24)

PURPOSE_RU = {
    Purpose.REORDER: "напоминание о повторном заказе",
    Purpose.NPS: "опрос NPS",
    Purpose.WINBACK: "возврат клиента",
}
OUTCOME_RU = {
    OutcomeKind.ANSWERED: "клиент ответил",
    OutcomeKind.DELIVERED: "сообщение доставлено",
    OutcomeKind.BUSY: "занято",
    OutcomeKind.NO_ANSWER: "нет ответа",
    OutcomeKind.VOICEMAIL: "автоответчик",
    OutcomeKind.REJECTED: "клиент отклонил",
    OutcomeKind.HUNG_UP_EARLY: "клиент сразу положил трубку",
    OutcomeKind.UNREACHABLE: "недоступен",
    OutcomeKind.FAILED: "не удалось",
    OutcomeKind.INTERRUPTED: "прервано сбоем",
}
CHANNEL_RU = {ChannelKind.TELEGRAM: "Telegram", ChannelKind.CALL: "звонок"}


@dataclass(frozen=True, slots=True)
class PendingOutcome:
    id: int
    attempt_id: int
    attempt_no: int
    client_id: int
    purpose: Purpose
    channel: ChannelKind
    kind: OutcomeKind
    late: bool
    detail: str
    data: Mapping[str, Any]
    recorded_at: datetime
    dedup_key: str


def needs_manager(kind: OutcomeKind, data: Mapping[str, Any]) -> str | None:
    """'detractor' or 'complaint' when a manager must call the client back, else None."""
    if data.get("complaint") or data.get("intent") == "complaint":
        return "complaint"
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        return None
    return "detractor" if nps_group(score) is NpsGroup.DETRACTOR else None


def summary(p: PendingOutcome) -> str:
    text = f"Обзвон ({PURPOSE_RU[p.purpose]}, {CHANNEL_RU[p.channel]}): {OUTCOME_RU[p.kind]}"
    score = p.data.get("score")
    if score is not None:
        text += f", оценка {score}"
    return text


class Followups:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        history: FollowupHistory,
        *,
        clock: Callable[[], datetime] = utcnow,
        batch: int = 200,
        parallel: int = 8,
    ) -> None:
        self._sessions = sessions
        self._history = history
        self._clock = clock
        self._batch = batch
        self._parallel = parallel
        self._dialect: str = sessions.kw["bind"].dialect.name
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event, *, idle_s: float = 5.0) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once()
            except Exception:
                log.exception("follow-up of outcomes failed; will retry")
                done = 0
            if done:
                continue
            self._wake.clear()
            await wait_for_first(stop, self._wake, within=idle_s)
        try:
            await self.run_once()  # what the last executions recorded
        except Exception:  # left pending: the next worker follows them up
            log.exception("final follow-up failed")

    def _pending_query(self) -> Any:
        query = (
            select(O, A.c.client_id, A.c.purpose, A.c.channel)
            .join(A, A.c.id == O.c.attempt_id)
            .where(O.c.followup_done_at.is_(None))
            .order_by(O.c.id)
            .limit(self._batch)
        )
        if self._dialect == "postgresql":  # each worker follows up different outcomes
            query = query.with_for_update(skip_locked=True, of=O)
        return query

    async def run_once(self) -> int:
        """Follow up one batch of outcomes; returns how many.

        The batch stays locked (PostgreSQL) until it is marked done, so a crash in between
        leaves it pending for the next try, and other workers take other outcomes meanwhile.
        """
        async with self._sessions.begin() as session:
            items = [_pending(r) for r in (await session.execute(self._pending_query())).all()]
            if not items:
                return 0
            limit = asyncio.Semaphore(1 if self._dialect == "sqlite" else self._parallel)

            async def one(p: PendingOutcome) -> None:
                async with limit:
                    await self.follow_up(p)

            await asyncio.gather(*(one(p) for p in items))
            await session.execute(
                update(O)
                .where(O.c.id.in_([p.id for p in items]))
                .values(followup_done_at=self._clock())
            )
        return len(items)

    async def follow_up(self, p: PendingOutcome) -> None:
        await self._history.append_event(
            NewEvent(
                client_id=p.client_id,
                kind=EventKind.NOTE,
                summary=summary(p),
                at=p.recorded_at,
                ref=f"attempt:{p.attempt_id}",
                data={
                    "attempt_id": p.attempt_id,
                    "attempt_no": p.attempt_no,
                    "purpose": p.purpose.value,
                    "channel": p.channel.value,
                    "outcome": p.kind.value,
                    **({"detail": p.detail} if p.detail else {}),
                    **{k: v for k, v in p.data.items() if k in ("score", "intent", "complaint")},
                },
                dedup_key=f"outreach:{p.dedup_key}",
            )
        )
        why = needs_manager(p.kind, p.data)
        if why is not None:
            title = (
                "Жалоба клиента: перезвонить в течение 24 часов"
                if why == "complaint"
                else f"Низкая оценка NPS ({p.data.get('score')}): перезвонить в течение 24 часов"
            )
            await self._history.create_task(
                NewTask(
                    client_id=p.client_id,
                    kind=why,
                    title=title,
                    due_at=p.recorded_at + TASK_DUE,
                    source_ref=f"attempt:{p.attempt_id}",
                    note=str(p.data.get("reason_text") or p.detail or "") or None,
                    dedup_key=f"outreach:task:{p.attempt_id}",
                )
            )

    async def lag_seconds(self, now: datetime) -> float:
        async with self._sessions() as session:
            oldest = (
                await session.execute(
                    select(func.min(O.c.recorded_at)).where(O.c.followup_done_at.is_(None))
                )
            ).scalar_one()
        return 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)


def _pending(r: Any) -> PendingOutcome:
    return PendingOutcome(
        id=r.id,
        attempt_id=r.attempt_id,
        attempt_no=r.attempt_no,
        client_id=r.client_id,
        purpose=Purpose(r.purpose),
        channel=ChannelKind(r.channel),
        kind=OutcomeKind(r.kind),
        late=r.late,
        detail=r.detail,
        data=r.data or {},
        recorded_at=r.recorded_at,
        dedup_key=r.dedup_key,
    )
