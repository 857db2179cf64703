"""The closed loop's entry for channels: a late outcome (a button pressed hours after the
message, a score written the next day) reported through ``povtor.ports.OutcomeSink``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from outreach.queue import insert_ignore
from outreach.tables import AttemptOutcomeRow, AttemptRow
from povtor.db import utcnow
from povtor.domain import AttemptState, OutcomeKind
from povtor.errors import NotFound

A: Table = AttemptRow.__table__  # type: ignore[assignment]
O: Table = AttemptOutcomeRow.__table__  # type: ignore[assignment]  # noqa: E741


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
        now = self._clock()
        payload = dict(data or {})
        digest = hashlib.sha256(
            json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
        ).hexdigest()[:16]
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(A)
                    .where(A.c.id == attempt_id)
                    .values(last_outcome=kind.value, updated_at=now)
                    .returning(A.c.attempt_no)
                )
            ).first()
            if row is None:
                raise NotFound(f"attempt #{attempt_id} not found")
            if kind is OutcomeKind.ANSWERED:  # the call that would follow is no longer needed
                await session.execute(
                    update(A)
                    .where(
                        A.c.fallback_of == attempt_id,
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
            await session.execute(
                insert_ignore(self.dialect, O).on_conflict_do_nothing(),
                {
                    "attempt_id": attempt_id,
                    "attempt_no": row.attempt_no,
                    "kind": kind.value,
                    "late": True,
                    "detail": str(payload.get("detail", ""))[:500],
                    "sip_code": None,
                    "ref": payload.get("ref"),
                    "data": payload or None,
                    "worker_id": None,
                    "recorded_at": now,
                    "dedup_key": f"late:{attempt_id}:{kind.value}:{digest}",
                    "followup_done_at": None,
                },
            )
        if self._on_recorded is not None:
            self._on_recorded()
