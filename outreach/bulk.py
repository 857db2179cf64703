"""PostgreSQL bulk statements for the hot path: one statement per batch over ``unnest`` of
array parameters instead of one per attempt, so its text (and asyncpg's prepared statement) is
the same whatever the batch's size: the starts with their contact rows, the outcomes with the
attempts' new states."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from povtor.db import execute_dml
from povtor.domain import ChannelKind, Purpose

if TYPE_CHECKING:
    from outreach.queue import NewAttempt

# The starts: each attempt in progress on its channel, leased to the worker under its claim's
# token, and counted as a contact.
_START_PARTS = """
    started AS (
        UPDATE outreach_attempts AS a
        SET state = 'in_progress', channel = s.channel, updated_at = :now,
            worker_id = CAST(:worker_id AS TEXT), lease_token = s.token,
            lease_expires_at = :lease_until
        FROM unnest(CAST(:start_ids AS BIGINT[]), CAST(:start_channels AS TEXT[]),
                    CAST(:start_tokens AS TEXT[])) AS s(id, channel, token)
        WHERE a.id = s.id
        RETURNING a.id, a.client_id, a.attempt_no, a.purpose, a.channel
    ), counted AS (
        INSERT INTO outreach_contacts (client_id, channel, at, attempt_id, attempt_no, purpose)
        SELECT client_id, channel, :now, id, attempt_no, purpose FROM started
        ON CONFLICT (attempt_id, attempt_no) DO NOTHING
    )"""

# The outcome row goes in with the attempt's update, only for attempts still under the lease.
# Each insert names the unique key it may meet (an execution's contact, an outcome's dedup
# key): the other unique index, the serial id, is then not probed for every row.
# The state is a parameter, not a literal: a literal matches the partial index on leased rows,
# and the generic plan PostgreSQL settles on after five executions of the prepared statement
# then scans that index and rescans the unnest per row (three times slower at 200 rows). It is
# compared as a column of ``v`` (a join condition, not a filter on the attempts): the planner
# then finds each attempt by its id; with the state as a filter it read the whole index of
# leased rows, stale entries included (it grows with every attempt started until VACUUM).
_FINISH_PARTS = """
    v AS (
        SELECT *, CAST(:running AS TEXT) AS running FROM unnest(
            CAST(:ids AS BIGINT[]), CAST(:tokens AS TEXT[]), CAST(:states AS TEXT[]),
            CAST(:not_befores AS TIMESTAMPTZ[]), CAST(:attempt_nos AS INTEGER[]),
            CAST(:outcomes AS TEXT[]), CAST(:details AS TEXT[]),
            CAST(:finished AS TIMESTAMPTZ[]), CAST(:our_failures AS INTEGER[]),
            CAST(:exec_nos AS INTEGER[]), CAST(:outcome_details AS TEXT[]),
            CAST(:sip_codes AS INTEGER[]), CAST(:refs AS TEXT[]), CAST(:data AS TEXT[]),
            CAST(:recorded AS TIMESTAMPTZ[])
        ) AS v(id, token, state, not_before, attempt_no, outcome, detail, finished,
               our_failures, exec_no, outcome_detail, sip_code, ref, data, recorded)
    ), done AS (
        UPDATE outreach_attempts AS a
        SET state = v.state, not_before = v.not_before, attempt_no = v.attempt_no,
            our_failures = v.our_failures, last_outcome = v.outcome, last_detail = v.detail,
            finished_at = v.finished,
            worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = :now
        FROM v
        WHERE a.id = v.id AND a.lease_token = v.token AND a.state = v.running
        RETURNING a.id
    ), recorded AS (
        INSERT INTO outreach_outcomes (attempt_id, attempt_no, kind, late, detail, sip_code,
            ref, data, worker_id, recorded_at, dedup_key, followup_done_at)
        SELECT v.id, v.exec_no, v.outcome, false, v.outcome_detail, v.sip_code, v.ref,
               CAST(v.data AS JSON), CAST(:worker_id AS TEXT), v.recorded,
               'exec:' || v.id || ':' || v.exec_no, NULL
        FROM v JOIN done ON done.id = v.id
        ON CONFLICT (dedup_key) DO NOTHING
    )"""
_START = text(f"WITH {_START_PARTS} SELECT count(*) FROM started")
_FINISH = text(f"WITH {_FINISH_PARTS} SELECT id FROM done")
# One statement for a round's outcomes and its starts (disjoint rows: the outcomes' attempts
# are in progress, the starts' were due).
_FINISH_AND_START = text(f"WITH {_FINISH_PARTS}, {_START_PARTS} SELECT id FROM done")


@dataclass(frozen=True, slots=True)
class Starts:
    """What :func:`start_many` and :func:`finish_many` need of a batch of starts."""

    ids: Sequence[int]
    channels: Sequence[str]
    tokens: Sequence[str]
    worker_id: str
    lease_until: datetime

    def params(self) -> dict[str, Any]:
        return {
            "start_ids": list(self.ids),
            "start_channels": list(self.channels),
            "start_tokens": list(self.tokens),
            "worker_id": self.worker_id,
            "lease_until": self.lease_until,
        }


async def start_many(session: AsyncSession, starts: Starts, now: datetime) -> None:
    """Mark the attempts in progress on their channels, leased to the worker under their
    claims' tokens, and count each as a contact."""
    await session.execute(_START, {**starts.params(), "now": now})


# The arrays of :func:`finish_many`, one value per outcome, in this order.
FINISH_COLUMNS = (
    "ids",
    "tokens",
    "states",
    "not_befores",
    "attempt_nos",
    "outcomes",
    "details",
    "finished",
    "our_failures",
    "exec_nos",
    "outcome_details",
    "sip_codes",
    "refs",
    "data",
    "recorded",
)


async def finish_many(
    session: AsyncSession,
    columns: dict[str, list[Any]],
    now: datetime,
    worker_id: str,
    starts: Starts | None = None,
) -> set[int]:
    """Apply finishes where the lease still holds and record their outcome rows in the same
    statement; the ids applied. ``columns``: the arrays of :data:`FINISH_COLUMNS` (the
    attempts' new states, the outcome rows' values; ``data`` as JSON text or None). With
    ``starts``, the same statement also starts those (as :func:`start_many`)."""
    result = await session.execute(
        _FINISH if starts is None else _FINISH_AND_START,
        {
            **columns,
            "running": "in_progress",
            "now": now,
            **({"worker_id": worker_id} if starts is None else starts.params()),
        },
    )
    return {row[0] for row in result}


_INSERT_ROWS = """
    INSERT INTO outreach_attempts (client_id, purpose, channel, state, not_before,
        idempotency_key, attempt_no, reason, payload, fallback_of, takeovers, created_at,
        updated_at, campaign_id)
    SELECT v.client_id, v.purpose, v.channel, CAST(:state AS TEXT), {not_before}, v.key, 1,
           v.reason, CAST(v.payload AS JSON), v.fallback_of, 0, :now, :now,
           CAST(:campaign_id AS BIGINT)
    FROM unnest({columns}) AS v(client_id, purpose, channel, not_before, key, reason, payload,
                                fallback_of)
    ON CONFLICT (idempotency_key) DO NOTHING
    """
_INSERT = text(
    _INSERT_ROWS.format(
        not_before="v.not_before",
        columns="""
        CAST(:client_ids AS BIGINT[]), CAST(:purposes AS TEXT[]), CAST(:channels AS TEXT[]),
        CAST(:not_befores AS TIMESTAMPTZ[]), CAST(:keys AS TEXT[]), CAST(:reasons AS TEXT[]),
        CAST(:payloads AS TEXT[]), CAST(:fallbacks AS BIGINT[])""",
    )
)
# The same rows with each text column as one text split by ``_SEP`` and the moments as
# positions in their distinct values: asyncpg checks and encodes every element of an array
# parameter (at 64,000 attempts ~31 ms of CPU per text column and ~74 ms for the moments, against
# ~5 ms for a joined text and ~15 ms for integers), and a pass's attempts share a few moments.
_INSERT_JOINED = text(
    _INSERT_ROWS.format(
        not_before="(CAST(:moments AS TIMESTAMPTZ[]))[v.not_before]",
        columns="""
        CAST(:client_ids AS BIGINT[]), string_to_array(CAST(:purposes AS TEXT), :sep),
        string_to_array(CAST(:channels AS TEXT), :sep), CAST(:moment_nos AS INTEGER[]),
        string_to_array(CAST(:keys AS TEXT), :sep), string_to_array(CAST(:reasons AS TEXT), :sep),
        string_to_array(CAST(:payloads AS TEXT), :sep, :no_payload),
        CAST(:fallbacks AS BIGINT[])""",
    )
)
_SEP = "\x1f"  # the unit separator: never in a JSON text (escaped there) nor an enum's value
_NO_PAYLOAD = "\x1e"  # stands for a missing payload (a JSON text is never this)


def _json_encoder() -> Callable[[Any], str]:
    """``json.JSONEncoder(ensure_ascii=False).encode`` of a dict or a list, the same text, with
    the C encoder behind it made once: ``encode`` makes one per call (~5 us of a payload's
    ~7 us). Made without the check for circular containers (our payloads are trees)."""
    encoder = json.JSONEncoder(ensure_ascii=False)
    if c_make_encoder is None:  # no C accelerator: the encoder as it is
        return encoder.encode
    chunks = c_make_encoder(
        None,  # no markers: no circular check
        encoder.default,
        encode_basestring,
        encoder.indent,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(value: Any) -> str:
        if not isinstance(value, dict | list | tuple):
            return encoder.encode(value)
        return "".join(chunks(value, 0))

    return encode


# One encoder for every payload (``json.dumps(..., ensure_ascii=False)`` built a new one per
# call): the same text as json.dumps, so the stored JSON is the same.
ENCODE_JSON = _json_encoder()


def _joined(values: list[str]) -> str | None:
    """``values`` as one text that ``string_to_array(text, _SEP)`` splits back into them; None
    when it would not (a value holding the separator, or a lone empty value)."""
    joined = _SEP.join(values)
    return joined if joined and joined.count(_SEP) == len(values) - 1 else None


async def insert_attempts(
    session: AsyncSession,
    attempts: Sequence[NewAttempt],
    now: datetime,
    *,
    state: str,
    campaign_id: int | None,
) -> int:
    """Insert planned attempts in one statement, each column one array or one joined text (no
    row dicts; the purposes and channels are their enums' strings); returns how many were new
    (the statement's row count, no ids sent back)."""
    statement, params = _insert_params(attempts, now, state, campaign_id)
    result = await execute_dml(session, statement, params)
    return int(result.rowcount)


def _insert_params(
    attempts: Sequence[NewAttempt], now: datetime, state: str, campaign_id: int | None
) -> tuple[TextClause, dict[str, Any]]:
    """``insert_attempts``'s statement and its parameters: the joined form when every text
    column can be joined, the arrays otherwise."""
    texts = {
        "purposes": [_TEXT[a.purpose] for a in attempts],
        "channels": [_TEXT[a.channel] for a in attempts],
        "keys": [a.idempotency_key for a in attempts],
        "reasons": [a.reason for a in attempts],
    }
    payloads = [ENCODE_JSON(a.payload) if a.payload else None for a in attempts]
    common = {
        "client_ids": [a.client_id for a in attempts],
        "fallbacks": [a.fallback_of for a in attempts],
        "now": now,
        "state": state,
        "campaign_id": campaign_id,
    }
    joined = {name: _joined(values) for name, values in texts.items()}
    joined["payloads"] = _joined([_NO_PAYLOAD if p is None else p for p in payloads])
    if all(value is not None for value in joined.values()):
        numbers: dict[datetime, int] = {}
        moment_nos = [numbers.setdefault(a.not_before, len(numbers) + 1) for a in attempts]
        return _INSERT_JOINED, {
            **common,
            **joined,
            "moments": list(numbers),
            "moment_nos": moment_nos,
            "sep": _SEP,
            "no_payload": _NO_PAYLOAD,
        }
    return _INSERT, {
        **common,
        **texts,
        "payloads": payloads,
        "not_befores": [a.not_before for a in attempts],
    }


_TEXT: dict[Purpose | ChannelKind, str] = {m: m.value for m in (*Purpose, *ChannelKind)}
