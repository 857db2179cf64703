"""Read-only views of attempts and outcomes for `povtor attempts`, metrics and tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from outreach.tables import AttemptOutcomeRow, AttemptRow
from povtor.db import table_of
from povtor.domain import AttemptState, ChannelKind, OutcomeKind, Purpose

A = table_of(AttemptRow)
O = table_of(AttemptOutcomeRow)  # noqa: E741


@dataclass(frozen=True, slots=True)
class AttemptView:
    id: int
    client_id: int
    purpose: Purpose
    channel: ChannelKind
    state: AttemptState
    not_before: datetime
    idempotency_key: str
    attempt_no: int
    reason: str
    last_outcome: OutcomeKind | None
    last_detail: str | None
    worker_id: str | None
    takeovers: int
    fallback_of: int | None
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutcomeView:
    attempt_id: int
    attempt_no: int
    kind: OutcomeKind
    late: bool
    data: dict[str, Any]
    recorded_at: datetime
    followed_up: bool


def _view(r: Any) -> AttemptView:
    return AttemptView(
        id=r.id,
        client_id=r.client_id,
        purpose=Purpose(r.purpose),
        channel=ChannelKind(r.channel),
        state=AttemptState(r.state),
        not_before=r.not_before,
        idempotency_key=r.idempotency_key,
        attempt_no=r.attempt_no,
        reason=r.reason,
        last_outcome=OutcomeKind(r.last_outcome) if r.last_outcome else None,
        last_detail=r.last_detail,
        worker_id=r.worker_id,
        takeovers=r.takeovers,
        fallback_of=r.fallback_of,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
    )


class AttemptListing:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def attempts(
        self,
        *,
        state: AttemptState | None = None,
        purpose: Purpose | None = None,
        channel: ChannelKind | None = None,
        client_ids: Sequence[int] | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[AttemptView]:
        query = select(A).where(A.c.id > after_id)
        if state is not None:
            query = query.where(A.c.state == state.value)
        if purpose is not None:
            query = query.where(A.c.purpose == purpose.value)
        if channel is not None:
            query = query.where(A.c.channel == channel.value)
        if client_ids is not None:
            query = query.where(A.c.client_id.in_(list(client_ids)))
        async with self._sessions() as session:
            rows = await session.execute(query.order_by(A.c.id).limit(limit))
            return [_view(r) for r in rows]

    async def outcomes(self, attempt_id: int | None = None) -> list[OutcomeView]:
        query = select(O).order_by(O.c.id)
        if attempt_id is not None:
            query = query.where(O.c.attempt_id == attempt_id)
        async with self._sessions() as session:
            return [
                OutcomeView(
                    r.attempt_id,
                    r.attempt_no,
                    OutcomeKind(r.kind),
                    r.late,
                    r.data or {},
                    r.recorded_at,
                    r.followup_done_at is not None,
                )
                for r in await session.execute(query)
            ]

    async def count_by_state(self) -> dict[AttemptState, int]:
        async with self._sessions() as session:
            rows = await session.execute(select(A.c.state, func.count()).group_by(A.c.state))
            counts = {AttemptState(r[0]): int(r[1]) for r in rows}
        return {s: counts.get(s, 0) for s in AttemptState}

    async def oldest_due(self, now: datetime) -> datetime | None:
        async with self._sessions() as session:
            value: datetime | None = (
                await session.execute(
                    select(func.min(A.c.not_before)).where(
                        A.c.state.in_(
                            [AttemptState.PLANNED.value, AttemptState.RETRY_SCHEDULED.value]
                        ),
                        A.c.not_before <= now,
                    )
                )
            ).scalar_one()
        return value
