"""PostgreSQL bulk statements for the hot path: one ``UPDATE ... FROM unnest(...)`` per batch
instead of one statement per attempt."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_START = text(
    """
    UPDATE outreach_attempts AS a
    SET state = 'in_progress', channel = v.channel, updated_at = :now
    FROM unnest(CAST(:ids AS BIGINT[]), CAST(:channels AS TEXT[])) AS v(id, channel)
    WHERE a.id = v.id
    """
)

_FINISH = text(
    """
    UPDATE outreach_attempts AS a
    SET state = v.state, not_before = v.not_before, attempt_no = v.attempt_no,
        last_outcome = v.outcome, last_detail = v.detail, finished_at = v.finished,
        worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = :now
    FROM unnest(
        CAST(:ids AS BIGINT[]), CAST(:tokens AS TEXT[]), CAST(:states AS TEXT[]),
        CAST(:not_befores AS TIMESTAMPTZ[]), CAST(:attempt_nos AS INTEGER[]),
        CAST(:outcomes AS TEXT[]), CAST(:details AS TEXT[]), CAST(:finished AS TIMESTAMPTZ[])
    ) AS v(id, token, state, not_before, attempt_no, outcome, detail, finished)
    WHERE a.id = v.id AND a.lease_token = v.token AND a.state = 'in_progress'
    RETURNING a.id
    """
)


async def start_many(
    session: AsyncSession, ids: Sequence[int], channels: Sequence[str], now: datetime
) -> None:
    await session.execute(_START, {"ids": list(ids), "channels": list(channels), "now": now})


async def finish_many(
    session: AsyncSession, params: Sequence[dict[str, Any]], tokens: Sequence[str], now: datetime
) -> set[int]:
    """Apply finish parameters (``b_*`` keys) where the lease still holds; the ids applied."""
    result = await session.execute(
        _FINISH,
        {
            "ids": [p["b_id"] for p in params],
            "tokens": list(tokens),
            "states": [p["b_state"] for p in params],
            "not_befores": [p["b_not_before"] for p in params],
            "attempt_nos": [p["b_attempt_no"] for p in params],
            "outcomes": [p["b_outcome"] for p in params],
            "details": [p["b_detail"] for p in params],
            "finished": [p["b_finished"] for p in params],
            "now": now,
        },
    )
    return {row[0] for row in result}
