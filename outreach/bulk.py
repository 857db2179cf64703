"""PostgreSQL bulk statements for the hot path: one ``UPDATE ... FROM unnest(...)`` per batch
instead of one statement per attempt."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from povtor.domain import ChannelKind, Purpose

if TYPE_CHECKING:
    from outreach.queue import NewAttempt

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
        our_failures = v.our_failures, last_outcome = v.outcome, last_detail = v.detail,
        finished_at = v.finished,
        worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = :now
    FROM unnest(
        CAST(:ids AS BIGINT[]), CAST(:tokens AS TEXT[]), CAST(:states AS TEXT[]),
        CAST(:not_befores AS TIMESTAMPTZ[]), CAST(:attempt_nos AS INTEGER[]),
        CAST(:outcomes AS TEXT[]), CAST(:details AS TEXT[]), CAST(:finished AS TIMESTAMPTZ[]),
        CAST(:our_failures AS INTEGER[])
    ) AS v(id, token, state, not_before, attempt_no, outcome, detail, finished, our_failures)
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
            "our_failures": [p["b_our_failures"] for p in params],
            "now": now,
        },
    )
    return {row[0] for row in result}


_INSERT = text(
    """
    INSERT INTO outreach_attempts (client_id, purpose, channel, state, not_before,
        idempotency_key, attempt_no, reason, payload, fallback_of, takeovers, created_at,
        updated_at, campaign_id)
    SELECT v.client_id, v.purpose, v.channel, CAST(:state AS TEXT), v.not_before, v.key, 1,
           v.reason, CAST(v.payload AS JSON), v.fallback_of, 0, :now, :now,
           CAST(:campaign_id AS BIGINT)
    FROM unnest(
        CAST(:client_ids AS BIGINT[]), CAST(:purposes AS TEXT[]), CAST(:channels AS TEXT[]),
        CAST(:not_befores AS TIMESTAMPTZ[]), CAST(:keys AS TEXT[]), CAST(:reasons AS TEXT[]),
        CAST(:payloads AS TEXT[]), CAST(:fallbacks AS BIGINT[])
    ) AS v(client_id, purpose, channel, not_before, key, reason, payload, fallback_of)
    ON CONFLICT (idempotency_key) DO NOTHING
    """
)
# One encoder for every payload: ``json.dumps(..., ensure_ascii=False)`` built a new one per
# call. The same text as json.dumps, so the stored JSON is the same.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


async def insert_attempts(
    session: AsyncSession,
    attempts: Sequence[NewAttempt],
    now: datetime,
    *,
    state: str,
    campaign_id: int | None,
) -> int:
    """Insert planned attempts in one statement, each column one array (no row dicts; the
    purposes and channels are their enums' strings); returns how many were new (the
    statement's row count, no ids sent back)."""
    result = await session.execute(
        _INSERT,
        {
            "client_ids": [a.client_id for a in attempts],
            "purposes": [_TEXT[a.purpose] for a in attempts],
            "channels": [_TEXT[a.channel] for a in attempts],
            "not_befores": [a.not_before for a in attempts],
            "keys": [a.idempotency_key for a in attempts],
            "reasons": [a.reason for a in attempts],
            "payloads": [_ENCODE(a.payload) if a.payload else None for a in attempts],
            "fallbacks": [a.fallback_of for a in attempts],
            "now": now,
            "state": state,
            "campaign_id": campaign_id,
        },
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


_TEXT: dict[Purpose | ChannelKind, str] = {m: m.value for m in (*Purpose, *ChannelKind)}
