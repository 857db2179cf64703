"""The closed loop's entry for channels: a late outcome (a button pressed hours after the
message, a score written the next day) reported through ``povtor.ports.OutcomeSink``."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from outreach.tables import AttemptOutcomeRow, AttemptRow
from povtor.db import insert_ignore, table_of, utcnow
from povtor.domain import AttemptState, OutcomeKind
from povtor.errors import NotFound
from povtor.ports import LateOutcome

A = table_of(AttemptRow)
O = table_of(AttemptOutcomeRow)  # noqa: E741
T = TypeVar("T")


class LateOutcomes:
    """Implements :class:`povtor.ports.OutcomeSink`. The same report twice is recorded once;
    an answer cancels the call that would have followed an unanswered message."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = utcnow,
        on_recorded: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._on_recorded = on_recorded
        self.dialect: str = sessions.kw["bind"].dialect.name

    async def report(
        self, attempt_id: int, kind: OutcomeKind, data: Mapping[str, Any] | None = None
    ) -> None:
        if await self.report_many([LateOutcome(attempt_id, kind, data)]):
            raise NotFound(f"attempt #{attempt_id} not found")

    async def report_many(self, outcomes: Sequence[LateOutcome]) -> set[int]:
        """Set-based: per outcome kind one UPDATE of the attempts, one UPDATE cancelling the
        calls that answered messages make unnecessary, and one INSERT of the outcomes executed
        for all rows (idempotent by dedup key), all in one transaction."""
        if not outcomes:
            return set()
        now = self._clock()
        by_kind: dict[OutcomeKind, set[int]] = defaultdict(set)
        for outcome in outcomes:
            by_kind[outcome.kind].add(outcome.attempt_id)
        attempt_no: dict[int, int] = {}
        async with self._sessions.begin() as session:
            for kind, ids in by_kind.items():
                for chunk in _chunks(sorted(ids)):
                    found = await session.execute(
                        update(A)
                        .where(A.c.id.in_(chunk))
                        .values(last_outcome=kind.value, updated_at=now)
                        .returning(A.c.id, A.c.attempt_no)
                    )
                    attempt_no.update({row.id: row.attempt_no for row in found})
            answered = sorted(by_kind.get(OutcomeKind.ANSWERED, set()) & attempt_no.keys())
            for chunk in _chunks(answered):  # the calls that would follow are not needed
                await session.execute(
                    update(A)
                    .where(
                        A.c.fallback_of.in_(chunk),
                        A.c.state.in_(
                            [AttemptState.PLANNED.value, AttemptState.RETRY_SCHEDULED.value]
                        ),
                    )
                    .values(
                        state=AttemptState.GIVEN_UP.value,
                        last_detail="answered in Telegram: no call needed",
                        finished_at=now,
                        updated_at=now,
                    )
                )
            rows = [
                self._outcome_row(outcome, attempt_no[outcome.attempt_id], now)
                for outcome in outcomes
                if outcome.attempt_id in attempt_no
            ]
            if rows:  # executemany: one cached statement, batched by the driver
                await session.execute(insert_ignore(self.dialect, O), rows)
        if attempt_no and self._on_recorded is not None:
            self._on_recorded()
        return {o.attempt_id for o in outcomes} - attempt_no.keys()

    @staticmethod
    def _outcome_row(outcome: LateOutcome, attempt_no: int, now: datetime) -> dict[str, Any]:
        payload = dict(outcome.data or {})
        digest = hashlib.sha256(
            json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
        ).hexdigest()[:16]
        return {
            "attempt_id": outcome.attempt_id,
            "attempt_no": attempt_no,
            "kind": outcome.kind.value,
            "late": True,
            "detail": str(payload.get("detail", ""))[:500],
            "sip_code": None,
            "ref": payload.get("ref"),
            "data": payload or None,
            "worker_id": None,
            "recorded_at": now,
            "dedup_key": f"late:{outcome.attempt_id}:{outcome.kind.value}:{digest}",
            "followup_done_at": None,
        }


def _chunks(items: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
