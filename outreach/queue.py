"""The attempt queue in SQL: planned attempts in, leased claims out, outcomes recorded once.

PostgreSQL: claims with ``FOR UPDATE SKIP LOCKED`` so several workers never take the same row;
SQLite: one worker (see :mod:`outreach.worker_lock`), writes serialised inside the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, case, delete, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from outreach.bulk import finish_many, insert_attempts, start_many
from outreach.tables import AttemptOutcomeRow, AttemptRow, ContactRow
from povtor.db import dialect_insert, table_of
from povtor.domain import Attempt, AttemptState, ChannelKind, Outcome, OutcomeKind, Purpose

A = table_of(AttemptRow)
O = table_of(AttemptOutcomeRow)  # noqa: E741
C = table_of(ContactRow)
DUE_STATES = (AttemptState.PLANNED.value, AttemptState.RETRY_SCHEDULED.value)
LEASED_STATES = (AttemptState.CLAIMED.value, AttemptState.IN_PROGRESS.value)


@dataclass(frozen=True, slots=True)
class NewAttempt:
    client_id: int
    purpose: Purpose
    channel: ChannelKind
    not_before: datetime
    idempotency_key: str
    reason: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    fallback_of: int | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    attempt: Attempt
    token: str
    resumed: bool  # it was in progress under a worker whose lease ran out
    takeovers: int
    fallback_of: int | None = None


@dataclass(frozen=True, slots=True)
class Start:
    claim: Claim
    channel: ChannelKind  # may differ from the planned one (consent changed, chat lost)


@dataclass(frozen=True, slots=True)
class Defer:
    claim: Claim
    until: datetime
    why: str


@dataclass(frozen=True, slots=True)
class Skip:
    claim: Claim
    why: str


Decision = Start | Defer | Skip


@dataclass(frozen=True, slots=True)
class Finish:
    """A finished execution: the outcome and what comes next."""

    claim: Claim
    channel: ChannelKind
    outcome: Outcome
    state: AttemptState
    retry_at: datetime | None = None
    fallback: NewAttempt | None = None
    detail: str = ""


def _attempt(row: Any) -> Attempt:
    return Attempt(
        id=row.id,
        client_id=row.client_id,
        purpose=Purpose(row.purpose),
        channel=ChannelKind(row.channel),
        state=AttemptState(row.state),
        not_before=row.not_before,
        idempotency_key=row.idempotency_key,
        attempt_no=row.attempt_no,
        reason=row.reason,
        payload=row.payload or {},
    )


class AttemptQueue:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, worker_id: str, lease: timedelta
    ) -> None:
        self._sessions = sessions
        self.worker_id = worker_id
        self.lease = lease
        engine = sessions.kw["bind"]
        self.dialect: str = engine.dialect.name
        # SQLite has one writer: serialising our own writes avoids "database is locked".
        self._write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        lock = self._write_lock if self.dialect == "sqlite" else contextlib.nullcontext()
        async with lock, self._sessions.begin() as session:
            if self.dialect == "sqlite":
                # Take the write lock first, so reads in this transaction see what we write on.
                await session.execute(text("UPDATE outreach_workers SET pid = pid WHERE 1 = 0"))
            yield session

    # -- planning -----------------------------------------------------------------------------

    async def add(self, attempts: Sequence[NewAttempt], now: datetime) -> int:
        """Insert planned attempts; an existing idempotency key is left alone. Returns new rows."""
        if not attempts:
            return 0
        rows = [self._row(a, now) for a in attempts]
        if self.dialect == "postgresql":
            async with self._write() as session:
                return await insert_attempts(session, rows, now)
        stmt = (
            dialect_insert(self.dialect, A)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(A.c.id)
        )
        async with self._write() as session:
            inserted = (await session.execute(stmt, rows)).all()
        return len(inserted)

    @staticmethod
    def _row(a: NewAttempt, now: datetime) -> dict[str, Any]:
        return {
            "client_id": a.client_id,
            "purpose": a.purpose.value,
            "channel": a.channel.value,
            "state": AttemptState.PLANNED.value,
            "not_before": a.not_before,
            "idempotency_key": a.idempotency_key,
            "attempt_no": 1,
            "reason": a.reason,
            "payload": a.payload or None,
            "fallback_of": a.fallback_of,
            "takeovers": 0,
            "created_at": now,
            "updated_at": now,
        }

    async def existing_keys(self, keys: Sequence[str]) -> set[str]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(A.c.idempotency_key).where(A.c.idempotency_key.in_(list(keys)))
            )
            return {r[0] for r in rows}

    async def recently_asked(
        self, client_ids: Sequence[int], purpose: Purpose, since: datetime
    ) -> set[int]:
        """Clients that got an attempt for ``purpose`` created since ``since``."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(A.c.client_id)
                .where(
                    self._in(A.c.client_id, client_ids),
                    text(f"purpose = '{purpose.value}'"),  # a literal: the partial index
                    A.c.created_at >= since,
                )
                .distinct()
            )
            return {r[0] for r in rows}

    def _in(self, column: Any, values: Sequence[int]) -> Any:
        """``column IN values``; on PostgreSQL one array parameter instead of one per value."""
        if self.dialect == "postgresql":
            return column == any_(bindparam("ids_array", list(values), type_=ARRAY(BigInteger)))
        return column.in_(list(values))

    # -- claims -------------------------------------------------------------------------------

    async def claim(self, now: datetime, limit: int) -> list[Claim]:
        """Lease up to ``limit`` due attempts to this worker."""
        due = (
            select(A.c.id)
            .where(A.c.state.in_(DUE_STATES), A.c.not_before <= now)
            .order_by(A.c.not_before)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._lease(due, now, resumed=False)

    async def take_over_expired(self, now: datetime, limit: int) -> list[Claim]:
        """Lease attempts whose worker stopped renewing: claimed ones were never started,
        in-progress ones are resumed (channels are idempotent per execution key)."""
        claims: list[Claim] = []
        for state, resumed in ((AttemptState.CLAIMED, False), (AttemptState.IN_PROGRESS, True)):
            expired = (
                select(A.c.id)
                .where(A.c.state.in_(LEASED_STATES), A.c.lease_expires_at < now)
                .where(A.c.state == state.value)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            claims += await self._lease(expired, now, resumed=resumed)
        return claims

    async def _lease(self, ids: Any, now: datetime, *, resumed: bool) -> list[Claim]:
        token = uuid.uuid4().hex
        stmt = (
            update(A)
            .where(A.c.id.in_(ids.scalar_subquery()))
            .values(
                state=AttemptState.CLAIMED.value,
                worker_id=self.worker_id,
                lease_token=token,
                lease_expires_at=now + self.lease,
                takeovers=A.c.takeovers + (1 if resumed else 0),
                updated_at=now,
            )
            .returning(*A.c)
        )
        async with self._write() as session:
            rows = list((await session.execute(stmt)).all())
        rows.sort(key=lambda r: (r.not_before, r.id))
        return [Claim(_attempt(r), token, resumed, r.takeovers, r.fallback_of) for r in rows]

    async def renew_leases(self, now: datetime) -> int:
        async with self._write() as session:
            result = await session.execute(
                update(A)
                .where(A.c.worker_id == self.worker_id, A.c.state.in_(LEASED_STATES))
                .values(lease_expires_at=now + self.lease)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def release(self, now: datetime, *, expire_in_progress: bool) -> int:
        """Give back what this worker holds: claimed attempts become due again; in-progress
        ones (their execution cut short) get an expired lease so another worker resumes them."""
        async with self._write() as session:
            back = await session.execute(
                update(A)
                .where(A.c.worker_id == self.worker_id, A.c.state == AttemptState.CLAIMED.value)
                .values(
                    state=_due_state(),
                    worker_id=None,
                    lease_token=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
            count = int(back.rowcount or 0)  # type: ignore[attr-defined]
            if expire_in_progress:
                expired = await session.execute(
                    update(A)
                    .where(
                        A.c.worker_id == self.worker_id,
                        A.c.state == AttemptState.IN_PROGRESS.value,
                    )
                    .values(lease_expires_at=now - timedelta(seconds=1))
                )
                count += int(expired.rowcount or 0)  # type: ignore[attr-defined]
        return count

    # -- starting: policies checked under a per-client lock -----------------------------------

    async def settle(
        self,
        claims: Sequence[Claim],
        now: datetime,
        since: datetime,
        decide: Callable[[Claim, list[datetime], list[datetime]], Decision],
    ) -> list[Decision]:
        """Decide each claim against the contacts made so far (calls, messages) and apply the
        decisions in one transaction; returns those that still hold their lease."""
        if not claims:
            return []
        client_ids = sorted({c.attempt.client_id for c in claims})
        async with self._write() as session:
            if self.dialect == "postgresql":  # caps are per client: serialise workers per client
                await session.execute(
                    text(
                        "SELECT pg_advisory_xact_lock(x) "
                        "FROM unnest(CAST(:ids AS BIGINT[])) AS x ORDER BY x"
                    ),
                    {"ids": client_ids},
                )
            owned = await self._owned(session, claims, AttemptState.CLAIMED)
            history: dict[tuple[int, str], list[datetime]] = {}
            rows = await session.execute(
                select(C.c.client_id, C.c.channel, C.c.at, C.c.attempt_id, C.c.attempt_no).where(
                    C.c.client_id.in_(client_ids), C.c.at >= since
                )
            )
            own_exec = {(c.attempt.id, c.attempt.attempt_no) for c in claims}
            for r in rows:
                if (r.attempt_id, r.attempt_no) not in own_exec:
                    history.setdefault((r.client_id, r.channel), []).append(r.at)
            decisions: list[Decision] = []
            for claim in claims:
                if claim.attempt.id not in owned:
                    continue
                cid = claim.attempt.client_id
                calls = history.setdefault((cid, ChannelKind.CALL.value), [])
                messages = history.setdefault((cid, ChannelKind.TELEGRAM.value), [])
                decision = decide(claim, calls, messages)
                if isinstance(decision, Start):
                    history[(cid, decision.channel.value)].append(now)
                decisions.append(decision)
            await self._apply(session, decisions, now)
        return decisions

    async def _owned(
        self, session: AsyncSession, claims: Sequence[Claim], state: AttemptState
    ) -> set[int]:
        tokens = {c.attempt.id: c.token for c in claims}
        query = select(A.c.id, A.c.lease_token).where(
            A.c.id.in_(list(tokens)), A.c.state == state.value
        )
        if self.dialect == "postgresql":
            query = query.with_for_update()
        rows = await session.execute(query)
        return {r.id for r in rows if r.lease_token == tokens[r.id]}

    async def _apply(
        self, session: AsyncSession, decisions: Sequence[Decision], now: datetime
    ) -> None:
        starts = [d for d in decisions if isinstance(d, Start)]
        defers = [d for d in decisions if isinstance(d, Defer)]
        skips = [d for d in decisions if isinstance(d, Skip)]
        if starts and self.dialect == "postgresql":
            ids = [s.claim.attempt.id for s in starts]
            await start_many(session, ids, [s.channel.value for s in starts], now)
        elif starts:
            await session.execute(
                update(A)
                .where(A.c.id == bindparam("b_id"))
                .values(
                    state=AttemptState.IN_PROGRESS.value,
                    channel=bindparam("b_channel"),
                    updated_at=now,
                ),
                [{"b_id": s.claim.attempt.id, "b_channel": s.channel.value} for s in starts],
            )
        if starts:
            await session.execute(
                dialect_insert(self.dialect, C).on_conflict_do_nothing(),
                [
                    {
                        "client_id": s.claim.attempt.client_id,
                        "channel": s.channel.value,
                        "at": now,
                        "attempt_id": s.claim.attempt.id,
                        "attempt_no": s.claim.attempt.attempt_no,
                    }
                    for s in starts
                ],
            )
        if defers:
            await session.execute(
                update(A)
                .where(A.c.id == bindparam("b_id"))
                .values(
                    state=_due_state(),
                    not_before=bindparam("b_until"),
                    last_detail=bindparam("b_why"),
                    worker_id=None,
                    lease_token=None,
                    lease_expires_at=None,
                    updated_at=now,
                ),
                [{"b_id": d.claim.attempt.id, "b_until": d.until, "b_why": d.why} for d in defers],
            )
        if skips:
            await session.execute(
                update(A)
                .where(A.c.id == bindparam("b_id"))
                .values(
                    state=AttemptState.GIVEN_UP.value,
                    last_detail=bindparam("b_why"),
                    lease_token=None,
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
                ),
                [{"b_id": s.claim.attempt.id, "b_why": s.why} for s in skips],
            )

    # -- finishing: each execution's outcome recorded once ------------------------------------

    async def finish(self, items: Sequence[Finish], now: datetime) -> list[Finish]:
        """Record outcomes of executions still under this worker's lease (others are refused:
        another worker took the attempt over and will record it). Returns the recorded ones."""
        if not items:
            return []
        async with self._write() as session:
            if self.dialect == "postgresql":
                params = [_finish_params(f, now) for f in items]
                tokens = [f.claim.token for f in items]
                applied = await finish_many(session, params, tokens, now)
                done = [f for f in items if f.claim.attempt.id in applied]
            else:
                owned = await self._owned(
                    session, [f.claim for f in items], AttemptState.IN_PROGRESS
                )
                done = [f for f in items if f.claim.attempt.id in owned]
                if done:
                    await session.execute(
                        update(A)
                        .where(A.c.id == bindparam("b_id"))
                        .values(
                            state=bindparam("b_state"),
                            not_before=bindparam("b_not_before"),
                            attempt_no=bindparam("b_attempt_no"),
                            last_outcome=bindparam("b_outcome"),
                            last_detail=bindparam("b_detail"),
                            finished_at=bindparam("b_finished"),
                            worker_id=None,
                            lease_token=None,
                            lease_expires_at=None,
                            updated_at=now,
                        ),
                        [_finish_params(f, now) for f in done],
                    )
            if not done:
                return []
            ours = [f.claim.attempt for f in done if f.outcome.ours]
            if ours:  # our failure (trunk down) is not a contact: the caps do not count it
                await session.execute(
                    delete(C).where(
                        C.c.attempt_id == bindparam("b_attempt_id"),
                        C.c.attempt_no == bindparam("b_attempt_no"),
                    ),
                    [{"b_attempt_id": a.id, "b_attempt_no": a.attempt_no} for a in ours],
                )
            await session.execute(
                dialect_insert(self.dialect, O).on_conflict_do_nothing(),
                [self._outcome_row(f, now) for f in done],
            )
            fallbacks = [self._row(f.fallback, now) for f in done if f.fallback is not None]
            if fallbacks:
                await session.execute(
                    dialect_insert(self.dialect, A).on_conflict_do_nothing(
                        index_elements=["idempotency_key"]
                    ),
                    fallbacks,
                )
                # the client may have answered before this outcome was recorded (a quick
                # press, or an execution resumed after a crash): then no call is needed
                sources = [f.claim.attempt.id for f in done if f.fallback is not None]
                answered = select(O.c.id).where(
                    O.c.attempt_id == A.c.fallback_of,
                    O.c.kind == OutcomeKind.ANSWERED.value,
                )
                await session.execute(
                    update(A)
                    .where(
                        A.c.fallback_of.in_(sources),
                        A.c.state == AttemptState.PLANNED.value,
                        answered.exists(),
                    )
                    .values(
                        state=AttemptState.GIVEN_UP.value,
                        last_detail="answered in Telegram: no call needed",
                        finished_at=now,
                        updated_at=now,
                    )
                )
        return done

    def _outcome_row(self, f: Finish, now: datetime) -> dict[str, Any]:
        a = f.claim.attempt
        return {
            "attempt_id": a.id,
            "attempt_no": a.attempt_no,
            "kind": f.outcome.kind.value,
            "late": False,
            "detail": f.outcome.detail,
            "sip_code": f.outcome.sip_code,
            "ref": f.outcome.ref,
            "data": dict(f.outcome.data) or None,
            "worker_id": self.worker_id,
            "recorded_at": f.outcome.finished_at or now,
            "dedup_key": f"exec:{a.id}:{a.attempt_no}",
            "followup_done_at": None,
        }


def _due_state() -> Any:
    """Back in the queue: 'retry_scheduled' if it ran before, else 'planned'."""
    return case(
        (A.c.attempt_no > 1, AttemptState.RETRY_SCHEDULED.value),
        else_=AttemptState.PLANNED.value,
    )


def _finish_params(f: Finish, now: datetime) -> dict[str, Any]:
    a = f.claim.attempt
    retry = f.state is AttemptState.RETRY_SCHEDULED
    return {
        "b_id": a.id,
        "b_state": f.state.value,
        "b_not_before": f.retry_at if retry and f.retry_at else a.not_before,
        "b_attempt_no": a.attempt_no + 1 if retry else a.attempt_no,
        "b_outcome": f.outcome.kind.value,
        "b_detail": f.detail or f.outcome.detail,
        "b_finished": None if retry else now,
    }
