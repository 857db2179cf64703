"""The attempt queue in SQL: planned attempts in, leased claims out, outcomes recorded once.

PostgreSQL: claims with ``FOR UPDATE SKIP LOCKED`` so several workers never take the same row;
SQLite: one worker (see :mod:`outreach.worker_lock`), writes serialised inside the process.

The claim, the lease, its renewal and the takeover of expired leases are the durable-work
mechanism's (:mod:`povtor.work`, over this table's own columns). What differs stays here:
paused purposes are left out of a claim; the policies (quiet hours, caps, pacing, consent) are
checked under per-client locks when the claims are settled; a retry's time comes from the
contact policy, and outcomes are written in batches with the execution's follow-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import operator
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    any_,
    bindparam,
    case,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from outreach.bulk import (
    ENCODE_JSON,
    FINISH_COLUMNS,
    Starts,
    finish_many,
    insert_attempts,
    start_many,
)
from outreach.tables import AttemptOutcomeRow, AttemptRow, CampaignRow, ContactRow, PauseRow
from povtor.db import UtcDateTime, autocommit_reads, dialect_insert, execute_dml, table_of
from povtor.domain import Attempt, AttemptState, ChannelKind, Outcome, OutcomeKind, Purpose
from povtor.ports import ErasureSubject
from povtor.work import WorkQueue, WorkTable

log = logging.getLogger(__name__)
A = table_of(AttemptRow)
O = table_of(AttemptOutcomeRow)  # noqa: E741
C = table_of(ContactRow)
K = table_of(CampaignRow)
P = table_of(PauseRow)
PACING_LOCK = (1886478180, 1)  # pg_advisory_xact_lock(int, int): apart from the client locks
DUE_STATES = (AttemptState.PLANNED.value, AttemptState.RETRY_SCHEDULED.value)
LEASED_STATES = (AttemptState.CLAIMED.value, AttemptState.IN_PROGRESS.value)
_NOT_PAUSED = (A.c.purpose.not_in(select(P.c.purpose)),)
WORK = WorkTable(
    A,
    ready=DUE_STATES,
    claimed=AttemptState.CLAIMED.value,
    running=(AttemptState.IN_PROGRESS.value,),
    dead=AttemptState.GIVEN_UP.value,
    due_at="not_before",
    attempts=None,  # attempt_no counts executions; the contact policy decides when to stop
    error="last_detail",
    lease_until="lease_expires_at",
    channel="outreach_attempts",
)


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


@dataclass(slots=True)
class SettleContext:
    """What a batch's decisions share: paused purposes and the contacts started this hour
    and this day per (channel, purpose), counted up as the batch starts more."""

    paused: frozenset[Purpose] = frozenset()
    counts: dict[tuple[ChannelKind, Purpose], tuple[int, int]] = field(default_factory=dict)
    # the first moment each (time zone, channel) may be contacted from the batch's moment on:
    # quiet hours worked out once per zone and channel, not once per attempt
    allowed: dict[tuple[datetime, str, ChannelKind], datetime] = field(default_factory=dict)

    def started(self, channel: ChannelKind, purpose: Purpose) -> None:
        hour, day = self.counts.get((channel, purpose), (0, 0))
        self.counts[(channel, purpose)] = (hour + 1, day + 1)


Decide = Callable[[Claim, list[datetime], list[datetime], SettleContext], Decision]


async def _ready(decide: Decide) -> Decide:
    return decide


@dataclass(frozen=True, slots=True)
class Round:
    """One dispatch round: the outcomes it recorded, what it claimed and what it decided."""

    recorded: list[Finish]
    claims: list[Claim]
    decisions: list[Decision]


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


# What a claim reads of its row, in this order (``_claims`` unpacks it): not the lease, the
# outcome or the timestamps the claim has just written or does not need.
_CLAIM_COLUMNS = (
    "id",
    "client_id",
    "purpose",
    "channel",
    "state",
    "not_before",
    "idempotency_key",
    "attempt_no",
    "reason",
    "payload",
    "fallback_of",
    "takeovers",
    "our_failures",
)
_PURPOSE = {p.value: p for p in Purpose}
_CHANNEL = {c.value: c for c in ChannelKind}
_STATE = {s.value: s for s in AttemptState}


class AttemptQueue:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, worker_id: str, lease: timedelta
    ) -> None:
        self._sessions = sessions
        self.worker_id = worker_id
        self.lease = lease
        self.work = WorkQueue(WORK, worker_id=worker_id, lease=lease)
        engine = sessions.kw["bind"]
        self.dialect: str = engine.dialect.name
        # SQLite has one writer: serialising our own writes avoids "database is locked".
        self._write_lock = asyncio.Lock()
        self._held: AsyncConnection | None = None  # kept between dispatch rounds (PostgreSQL)
        self._single = autocommit_reads(engine)  # single-statement writes (PostgreSQL)

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        lock = self._write_lock if self.dialect == "sqlite" else contextlib.nullcontext()
        async with lock:
            async with self._sessions.begin() as session:
                if self.dialect == "sqlite":
                    # Take the write lock first, so reads in this transaction see what we write.
                    await session.execute(
                        text("UPDATE outreach_workers SET pid = pid WHERE 1 = 0")
                    )
                yield session
            if session.info.pop("due_now", False):
                self.work.wake()  # committed: this process's dispatcher looks at once

    async def _became_due(self, session: AsyncSession) -> None:
        """Attempts are due now by this transaction: dispatchers in other processes are told
        when it commits (PostgreSQL ``NOTIFY``), this process's right after the commit."""
        if not session.info.get("due_now"):
            await self.work.notify(await session.connection())
            session.info["due_now"] = True

    async def keep_listening(self) -> None:
        """Wake this process's dispatcher when another process makes attempts due (PostgreSQL;
        returns at once on SQLite, where one process dispatches)."""
        await self.work.keep_listening(self._sessions.kw["bind"])

    # -- planning -----------------------------------------------------------------------------

    async def add(
        self, attempts: Sequence[NewAttempt], now: datetime, *, campaign_id: int | None = None
    ) -> int:
        """Insert planned attempts; an existing idempotency key is left alone. Returns new rows.
        With ``campaign_id`` they wait for approval (``pending_approval``) in that campaign."""
        if not attempts:
            return 0
        state = AttemptState.PLANNED if campaign_id is None else AttemptState.PENDING_APPROVAL
        due = campaign_id is None and any(a.not_before <= now for a in attempts)
        async with self._write() as session:
            if self.dialect == "postgresql":
                count = await insert_attempts(
                    session, attempts, now, state=state.value, campaign_id=campaign_id
                )
            else:
                rows = [self._row(a, now) for a in attempts]
                if campaign_id is not None:
                    for row in rows:
                        row["state"] = state.value
                        row["campaign_id"] = campaign_id
                stmt = (
                    dialect_insert(self.dialect, A)
                    .on_conflict_do_nothing(index_elements=["idempotency_key"])
                    .returning(A.c.id)
                )
                count = len((await session.execute(stmt, rows)).all())
            if count and due:
                await self._became_due(session)
        return count

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

    # -- campaigns: a large planning pass waits for a manager --------------------------------

    async def open_campaign(self, purpose: Purpose, now: datetime) -> int:
        """A campaign whose attempts wait; created ``pending`` so that a pass cut short by a
        crash leaves them waiting for a manager, never released unseen."""
        async with self._write() as session:
            result = await session.execute(
                K.insert()
                .values(purpose=purpose.value, state="pending", attempts=0, created_at=now)
                .returning(K.c.id)
            )
            return int(result.scalar_one())

    async def close_campaigns(self, created: dict[int, int], now: datetime, *, hold: bool) -> None:
        """End a planning pass: each campaign gets its count of new attempts; empty ones are
        dropped; unless ``hold``, the rest are released at once (state ``auto``)."""
        async with self._write() as session:
            for campaign_id, count in created.items():
                if count == 0:
                    await session.execute(K.delete().where(K.c.id == campaign_id))
                    continue
                await session.execute(
                    update(K)
                    .where(K.c.id == campaign_id)
                    .values(attempts=count, **({} if hold else {"state": "auto"}))
                )
                if not hold and await self._release_campaign(session, campaign_id, now):
                    await self._became_due(session)

    async def _release_campaign(
        self, session: AsyncSession, campaign_id: int, now: datetime
    ) -> int:
        result = await execute_dml(
            session,
            update(A)
            .where(
                A.c.campaign_id == campaign_id,
                A.c.state == AttemptState.PENDING_APPROVAL.value,
            )
            .values(state=AttemptState.PLANNED.value, updated_at=now),
        )
        return result.rowcount

    async def decide_campaign(
        self, campaign_id: int, *, approve: bool, by: str, now: datetime
    ) -> list[int]:
        """Approve (attempts become planned) or reject (given up) a pending campaign; returns
        the clients concerned. Raises ``LookupError`` if it is not pending."""
        async with self._write() as session:
            row = (
                await session.execute(
                    update(K)
                    .where(K.c.id == campaign_id, K.c.state == "pending")
                    .values(
                        state="approved" if approve else "rejected",
                        decided_at=now,
                        decided_by=by,
                    )
                    .returning(K.c.id)
                )
            ).first()
            if row is None:
                raise LookupError(f"campaign #{campaign_id} is not waiting for approval")
            clients = [
                r[0]
                for r in await session.execute(
                    select(A.c.client_id).where(
                        A.c.campaign_id == campaign_id,
                        A.c.state == AttemptState.PENDING_APPROVAL.value,
                    )
                )
            ]
            if approve:
                if await self._release_campaign(session, campaign_id, now):
                    await self._became_due(session)
            else:
                await session.execute(
                    update(A)
                    .where(
                        A.c.campaign_id == campaign_id,
                        A.c.state == AttemptState.PENDING_APPROVAL.value,
                    )
                    .values(
                        state=AttemptState.GIVEN_UP.value,
                        last_detail=f"campaign rejected by {by}",
                        finished_at=now,
                        updated_at=now,
                    )
                )
        return clients

    # -- pauses ---------------------------------------------------------------------------------

    async def set_paused(self, purpose: Purpose, paused: bool, *, by: str, now: datetime) -> bool:
        """Pause or resume new contacts for a purpose; False if it already was so."""
        async with self._write() as session:
            if paused:
                stmt = dialect_insert(self.dialect, P).on_conflict_do_nothing()
                values = {"purpose": purpose.value, "paused_at": now, "paused_by": by}
                result = await execute_dml(session, stmt.values(values))
            else:
                result = await execute_dml(session, P.delete().where(P.c.purpose == purpose.value))
            changed = bool(result.rowcount)
            if changed and not paused:  # its waiting attempts may be claimed again
                await self._became_due(session)
            return changed

    async def paused(self) -> dict[Purpose, tuple[datetime, str]]:
        async with self._sessions() as session:
            rows = await session.execute(select(P.c.purpose, P.c.paused_at, P.c.paused_by))
            return {Purpose(r.purpose): (r.paused_at, r.paused_by) for r in rows}

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

    # -- erasure ------------------------------------------------------------------------------

    async def erase_clients(self, subjects: Sequence[ErasureSubject]) -> dict[str, int]:
        """``ClientErasure``: the clients' attempts, their outcomes and contacts are deleted;
        how many of each went. Nothing else in outreach keeps a client's id."""
        client_ids = [s.client_id for s in subjects]
        if not client_ids:
            return {"attempts": 0, "outcomes": 0, "contacts": 0}
        theirs = select(A.c.id).where(self._in(A.c.client_id, client_ids)).scalar_subquery()
        async with self._write() as session:
            outcomes = await execute_dml(session, delete(O).where(O.c.attempt_id.in_(theirs)))
            contacts = await execute_dml(
                session, delete(C).where(self._in(C.c.client_id, client_ids))
            )
            attempts = await execute_dml(
                session, delete(A).where(self._in(A.c.client_id, client_ids))
            )
        return {
            "attempts": int(attempts.rowcount),
            "outcomes": int(outcomes.rowcount),
            "contacts": int(contacts.rowcount),
        }

    # -- claims -------------------------------------------------------------------------------

    async def claim(self, now: datetime, limit: int) -> list[Claim]:
        """Lease up to ``limit`` due attempts to this worker, in due order."""
        if self.dialect == "postgresql" and limit > 0:
            return await self._lease_due(now, limit)
        async with self._write() as session:
            return await self._lease_in(session, now, limit, where=_NOT_PAUSED, resumed=False)

    async def _lease_due(self, now: datetime, limit: int) -> list[Claim]:
        """:meth:`claim` on PostgreSQL: one statement outside a transaction (it is atomic on
        its own: no ``BEGIN`` and ``COMMIT`` round trips around it)."""
        token = uuid.uuid4().hex
        params = {
            "now": now,
            "limit": limit,
            "worker_id": self.worker_id,
            "token": token,
            "lease_until": now + self.lease,
        }
        async with self._single.connect() as conn:
            rows = list((await conn.execute(_LEASE_DUE, params)).all())
        rows.sort(key=_due_order)
        return _claims(rows, token, False, _JSON_LOADS)

    async def take_over_expired(self, now: datetime, limit: int) -> list[Claim]:
        """Lease attempts whose worker stopped renewing: claimed ones were never started,
        in-progress ones are resumed (channels are idempotent per execution key)."""
        async with self._write() as session:
            return await self._take_over_in(session, now, limit)

    async def _take_over_in(self, session: AsyncSession, now: datetime, limit: int) -> list[Claim]:
        claims: list[Claim] = []
        for state, resumed in ((AttemptState.CLAIMED, False), (AttemptState.IN_PROGRESS, True)):
            where = (A.c.state == state.value,)
            claims += await self._lease_in(
                session, now, limit, where=where, resumed=resumed, takeover=True
            )
        return claims

    async def _lease_in(
        self,
        session: AsyncSession,
        now: datetime,
        limit: int,
        *,
        where: Sequence[Any],
        resumed: bool,
        takeover: bool = False,
        hold: bool = False,
    ) -> list[Claim]:
        """Lease in the caller's transaction; with ``hold`` the rows are only locked for the
        transaction, leased when they start (see :meth:`WorkQueue.claim`)."""
        values = {"takeovers": A.c.takeovers + (1 if resumed else 0)}
        batch = await self.work.claim(
            await session.connection(),
            now,
            limit,
            where=where,
            takeover=takeover,
            values=values,
            hold=hold,
            columns=_CLAIM_COLUMNS,
        )
        return _claims(batch.rows, batch.token, resumed)

    async def renew_leases(self, now: datetime) -> int:
        async with self._write() as session:
            return await self.work.renew(await session.connection(), now)

    async def release(self, now: datetime, *, expire_in_progress: bool) -> int:
        """Give back what this worker holds: claimed attempts become due again; in-progress
        ones (their execution cut short) get an expired lease so another worker resumes them."""
        async with self._write() as session:
            back = await execute_dml(
                session,
                update(A)
                .where(A.c.worker_id == self.worker_id, A.c.state == AttemptState.CLAIMED.value)
                .values(
                    state=_due_state(),
                    worker_id=None,
                    lease_token=None,
                    lease_expires_at=None,
                    updated_at=now,
                ),
            )
            count = back.rowcount
            if expire_in_progress:
                expired = await execute_dml(
                    session,
                    update(A)
                    .where(
                        A.c.worker_id == self.worker_id,
                        A.c.state == AttemptState.IN_PROGRESS.value,
                    )
                    .values(lease_expires_at=now - timedelta(seconds=1)),
                )
                count += expired.rowcount
            if count:
                await self._became_due(session)
        return count

    async def give_back(self, claims: Sequence[Claim], now: datetime) -> int:
        """Executions that never reached the client (the worker was stopping): due again at
        once, their contact struck from the caps, as if never claimed."""
        if not claims:
            return 0
        count = 0
        async with self._write() as session:
            for claim in claims:
                a = claim.attempt
                result = await execute_dml(
                    session,
                    update(A)
                    .where(
                        A.c.id == a.id,
                        A.c.lease_token == claim.token,
                        A.c.state == AttemptState.IN_PROGRESS.value,
                    )
                    .values(
                        state=_due_state(),
                        worker_id=None,
                        lease_token=None,
                        lease_expires_at=None,
                        last_detail="not started: the worker was stopping",
                        updated_at=now,
                    ),
                )
                if result.rowcount:
                    count += 1
                    await session.execute(
                        C.delete().where(C.c.attempt_id == a.id, C.c.attempt_no == a.attempt_no)
                    )
            if count:
                await self._became_due(session)
        return count

    # -- a dispatch round: outcomes, claims and decisions in one transaction -------------------

    async def dispatch(
        self,
        now: datetime,
        limit: int,
        *,
        finished: Sequence[Finish],
        take_over: bool,
        since: datetime,
        decider: Callable[[list[Claim], AsyncSession], Awaitable[Decide]],
        pace_since: tuple[datetime, datetime] | None = None,
    ) -> Round:
        """Record ``finished`` (as :meth:`finish`), lease up to ``limit`` attempts (with
        ``take_over``, expired leases first) and settle them (as :meth:`settle`), all in one
        transaction: a failure leaves nothing claimed and nothing recorded, and the whole
        round costs one commit. ``decider`` is called with the claims and the round's session
        once their clients are locked and their contacts read; it returns the function
        deciding each claim (its reads, such as the clients', may use the session).

        The outcomes go first, before any client lock is taken: their fallback calls may touch
        rows another worker is claiming, and that worker may wait for a client lock; a round
        never waits for a row while it holds client locks, so no two rounds wait on each other.
        """
        async with self._round() as session:
            postgres = self.dialect == "postgresql"
            # Outcomes that bring nothing along go in the starts' statement, one round trip
            # less; the others first (see above).
            fold = postgres and all(f.fallback is None and not f.outcome.ours for f in finished)
            recorded = (
                [] if fold or not finished else await self._finish_in(session, finished, now)
            )
            folding = finished if fold else ()
            if postgres and pace_since is not None:  # one pacer at a time, before any client
                await _pacing_lock(session)
            claims: list[Claim] = []
            if take_over and limit > 0:
                claims += await self._take_over_in(session, now, limit)
            # The claim takes its clients' locks itself unless takeovers came first: the locks
            # of one transaction are taken in one statement, in client order.
            lock_in_claim = postgres and not claims
            if claims and folding:  # an attempt taken over may be among the outcomes
                recorded, folding = await self._finish_in(session, folding, now), ()
            if limit > len(claims) and postgres:
                claims += await _hold_due(session, now, limit - len(claims), lock_in_claim)
            elif limit > len(claims):
                claims += await self._lease_in(
                    session,
                    now,
                    limit - len(claims),
                    where=_NOT_PAUSED,
                    resumed=False,
                    hold=True,  # leased by the start below, in this transaction
                )
            if postgres and claims and not lock_in_claim:
                await _lock_clients(session, sorted({c.attempt.client_id for c in claims}))
            decisions, folded = await self._decide_in(
                session, claims, now, since, decider, pace_since, None, folding
            )
            recorded += folded
        return Round(recorded, claims, decisions)

    @contextlib.asynccontextmanager
    async def _round(self) -> AsyncIterator[AsyncSession]:
        """A dispatch round's transaction. On PostgreSQL on a connection this queue keeps
        between rounds (:meth:`close` gives it back): checking one out of the pool costs a
        ping of three round trips, more than a round's own statements. A round that fails
        closes it; the next checks out a fresh one (the database may have restarted)."""
        if self.dialect != "postgresql":
            async with self._write() as session:
                yield session
            return
        conn, self._held = self._held, None
        if conn is None:
            conn = await self._sessions.kw["bind"].connect()
        session = AsyncSession(bind=conn, expire_on_commit=False)
        try:
            async with conn.begin():
                yield session
        except BaseException:
            await session.close()
            with contextlib.suppress(Exception):  # gone already: the round's error is raised
                await conn.close()
            raise
        await session.close()
        self._held = conn
        if session.info.pop("due_now", False):
            self.work.wake()

    async def close(self) -> None:
        """Give back the connection kept for dispatch rounds."""
        conn, self._held = self._held, None
        if conn is not None:
            try:
                await conn.close()
            except Exception as err:  # gone with the database: nothing left to give back
                log.warning("closing the dispatch connection failed: %s", err)

    # -- starting: policies checked under a per-client lock -----------------------------------

    async def settle(
        self,
        claims: Sequence[Claim],
        now: datetime,
        since: datetime,
        decide: Decide,
        *,
        pace_since: tuple[datetime, datetime] | None = None,
    ) -> list[Decision]:
        """Decide each claim against the contacts made so far (calls, messages), the paused
        purposes and, with ``pace_since`` (this hour's and this day's start), the contacts
        started over all clients; apply the decisions in one transaction; returns those that
        still hold their lease."""
        if not claims:
            return []
        async with self._write() as session:
            client_ids = sorted({c.attempt.client_id for c in claims})
            if self.dialect == "postgresql" and pace_since is not None:
                await _pacing_lock(session)
            owned, paused = await self._claimed_still(session, claims, client_ids)
            mine = [c for c in claims if c.attempt.id in owned]
            decisions, _ = await self._decide_in(
                session, mine, now, since, lambda _c, _s: _ready(decide), pace_since, paused
            )
            return decisions

    async def _decide_in(
        self,
        session: AsyncSession,
        claims: Sequence[Claim],
        now: datetime,
        since: datetime,
        decider: Callable[[list[Claim], AsyncSession], Awaitable[Decide]],
        pace_since: tuple[datetime, datetime] | None,
        paused: frozenset[Purpose] | None,
        finished: Sequence[Finish] = (),
    ) -> tuple[list[Decision], list[Finish]]:
        """Decide locked claims against their clients' contacts (read now, under the client
        locks) and apply the decisions in the caller's transaction, with ``finished`` (see
        :meth:`_apply`). ``paused``: the purposes paused, or None to read them with the
        contacts. Returns the decisions and the outcomes recorded."""
        if not claims:
            return [], await self._finish_in(session, finished, now) if finished else []
        client_ids = sorted({c.attempt.client_id for c in claims})
        history: dict[tuple[int, str], list[datetime]] = {}
        if paused is None and self.dialect == "postgresql":  # one statement for both
            rows = list(await session.execute(_HISTORY, {"ids": client_ids, "since": since}))
            paused = frozenset(Purpose(p) for p in rows[0].paused)
            rows = [r for r in rows if r.client_id is not None]
        else:
            if paused is None:
                paused = frozenset(Purpose(p) for p in await session.scalars(select(P.c.purpose)))
            rows = list(
                await session.execute(
                    select(
                        C.c.client_id, C.c.channel, C.c.at, C.c.attempt_id, C.c.attempt_no
                    ).where(self._in(C.c.client_id, client_ids), C.c.at >= since)
                )
            )
        ctx = SettleContext(paused=paused)
        if pace_since is not None:
            ctx.counts = await pace_counts(session, *pace_since)
        own_exec = {(c.attempt.id, c.attempt.attempt_no) for c in claims}
        for r in rows:
            if (r.attempt_id, r.attempt_no) not in own_exec:
                history.setdefault((r.client_id, r.channel), []).append(r.at)
        decide = await decider(list(claims), session)
        decisions: list[Decision] = []
        for claim in claims:
            cid = claim.attempt.client_id
            calls = history.setdefault((cid, ChannelKind.CALL.value), [])
            messages = history.setdefault((cid, ChannelKind.TELEGRAM.value), [])
            decision = decide(claim, calls, messages, ctx)
            if isinstance(decision, Start):
                history[(cid, decision.channel.value)].append(now)
                ctx.started(decision.channel, claim.attempt.purpose)
            decisions.append(decision)
        return decisions, await self._apply(session, decisions, now, finished)

    async def _claimed_still(
        self, session: AsyncSession, claims: Sequence[Claim], client_ids: Sequence[int]
    ) -> tuple[set[int], frozenset[Purpose]]:
        """Which claims this worker still holds, locked, and which of their purposes are paused
        now. On PostgreSQL the same statement first takes the clients' advisory locks, in id
        order: the caps are per client, so workers settle one client's attempts one at a time
        (the contact history is read after this statement, under those locks)."""
        tokens = {c.attempt.id: c.token for c in claims}
        paused = A.c.purpose.in_(select(P.c.purpose))
        query = select(A.c.id, A.c.lease_token, A.c.purpose, paused.label("paused")).where(
            self._in(A.c.id, list(tokens)), A.c.state == AttemptState.CLAIMED.value
        )
        if self.dialect == "postgresql":
            clients_locked = text(f"({_LOCK_CLIENTS}) >= 0").bindparams(
                client_ids=list(client_ids)
            )
            query = query.where(clients_locked).with_for_update(of=A)
        rows = [r for r in await session.execute(query) if r.lease_token == tokens[r.id]]
        return {r.id for r in rows}, frozenset(Purpose(r.purpose) for r in rows if r.paused)

    async def _owned(
        self, session: AsyncSession, claims: Sequence[Claim], state: AttemptState
    ) -> set[int]:
        tokens = {c.attempt.id: c.token for c in claims}
        query = select(A.c.id, A.c.lease_token).where(
            self._in(A.c.id, list(tokens)), A.c.state == state.value
        )
        if self.dialect == "postgresql":
            query = query.with_for_update()
        rows = await session.execute(query)
        return {r.id for r in rows if r.lease_token == tokens[r.id]}

    async def _apply(
        self,
        session: AsyncSession,
        decisions: Sequence[Decision],
        now: datetime,
        finished: Sequence[Finish] = (),
    ) -> list[Finish]:
        """Write the decisions; ``finished`` (PostgreSQL, outcomes without fallbacks or our
        own failures) are recorded in the starts' statement. Returns those recorded."""
        starts = [d for d in decisions if isinstance(d, Start)]
        defers = [d for d in decisions if isinstance(d, Defer)]
        skips = [d for d in decisions if isinstance(d, Skip)]
        recorded: list[Finish] = []
        # A start leases the attempt (its claim may only have locked it: ``hold``).
        if starts and self.dialect == "postgresql":  # with their contact rows
            leases = Starts(
                [s.claim.attempt.id for s in starts],
                [_CHANNEL_TEXT[s.channel] for s in starts],
                [s.claim.token for s in starts],
                self.worker_id,
                now + self.lease,
            )
            if finished:
                recorded = await self._finish_many(session, finished, now, leases)
                await self._after_finish(session, recorded, now)
            else:
                await start_many(session, leases, now)
        elif starts:
            await session.execute(
                update(A)
                .where(A.c.id == bindparam("b_id"))
                .values(
                    state=AttemptState.IN_PROGRESS.value,
                    channel=bindparam("b_channel"),
                    worker_id=self.worker_id,
                    lease_token=bindparam("b_token"),
                    lease_expires_at=now + self.lease,
                    updated_at=now,
                ),
                [
                    {
                        "b_id": s.claim.attempt.id,
                        "b_channel": s.channel.value,
                        "b_token": s.claim.token,
                    }
                    for s in starts
                ],
            )
            await session.execute(
                dialect_insert(self.dialect, C).on_conflict_do_nothing(),
                [
                    {
                        "client_id": s.claim.attempt.client_id,
                        "channel": s.channel.value,
                        "at": now,
                        "attempt_id": s.claim.attempt.id,
                        "attempt_no": s.claim.attempt.attempt_no,
                        "purpose": s.claim.attempt.purpose.value,
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
        if finished and not (starts and self.dialect == "postgresql"):
            recorded = await self._finish_in(session, finished, now)
        return recorded

    # -- finishing: each execution's outcome recorded once ------------------------------------

    async def finish(self, items: Sequence[Finish], now: datetime) -> list[Finish]:
        """Record outcomes of executions still under this worker's lease (others are refused:
        another worker took the attempt over and will record it). Returns the recorded ones."""
        if not items:
            return []
        async with self._write() as session:
            return await self._finish_in(session, items, now)

    async def _finish_in(
        self, session: AsyncSession, items: Sequence[Finish], now: datetime
    ) -> list[Finish]:
        if self.dialect == "postgresql":  # with their outcome rows
            done = await self._finish_many(session, items, now)
        else:
            owned = await self._owned(session, [f.claim for f in items], AttemptState.IN_PROGRESS)
            done = [f for f in items if f.claim.attempt.id in owned]
            if done:
                await session.execute(
                    update(A)
                    .where(A.c.id == bindparam("b_id"))
                    .values(
                        state=bindparam("b_state"),
                        not_before=bindparam("b_not_before"),
                        attempt_no=bindparam("b_attempt_no"),
                        our_failures=bindparam("b_our_failures"),
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
                await session.execute(
                    dialect_insert(self.dialect, O).on_conflict_do_nothing(),
                    [self._outcome_row(f, now) for f in done],
                )
        await self._after_finish(session, done, now)
        return done

    async def _finish_many(
        self,
        session: AsyncSession,
        items: Sequence[Finish],
        now: datetime,
        starts: Starts | None = None,
    ) -> list[Finish]:
        """The outcomes' statement (PostgreSQL), with ``starts`` in it if given; the outcomes
        recorded."""
        applied = await finish_many(
            session, _finish_columns(items, now), now, self.worker_id, starts
        )
        return [f for f in items if f.claim.attempt.id in applied]

    async def _after_finish(
        self, session: AsyncSession, done: Sequence[Finish], now: datetime
    ) -> None:
        """What recorded outcomes bring along: our own failures struck from the contacts,
        fallback calls, and a wake-up when something is due at once."""
        if not done:
            return
        ours = [f.claim.attempt for f in done if f.outcome.ours]
        if ours:  # our failure (trunk down) is not a contact: the caps do not count it
            await session.execute(
                delete(C).where(
                    C.c.attempt_id == bindparam("b_attempt_id"),
                    C.c.attempt_no == bindparam("b_attempt_no"),
                ),
                [{"b_attempt_id": a.id, "b_attempt_no": a.attempt_no} for a in ours],
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
        if any(_due_again(f, now) for f in done):
            await self._became_due(session)

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


# A round's claim on PostgreSQL: the statement ``WorkQueue.claim(hold=True,
# lock_by="client_id")`` builds with the paused purposes left out, written out once: its text
# is the same every round (SQLAlchemy builds nothing, asyncpg prepares it once per connection;
# built per round it cost more Python than the rows it returned), and it returns only the
# columns a claim needs (no JSON decoded where there is no payload). The due rows are locked
# (``FOR UPDATE SKIP LOCKED``), not leased: a start leases each in the same transaction. With
# the locks, the same statement then takes the claimed clients' advisory locks in id order.
_RETURNED = """id, client_id, purpose, channel, state, not_before, idempotency_key,
    attempt_no, reason, CAST(payload AS TEXT) AS payload, fallback_of, takeovers, our_failures"""
_DUE_PARTS = f"""
    FROM outreach_attempts
    WHERE state IN {DUE_STATES!r} AND not_before <= :now
        AND purpose {{}}
    ORDER BY not_before
    LIMIT :limit
    FOR UPDATE SKIP LOCKED"""
_HELD_PARTS = (
    f"SELECT {_RETURNED} {_DUE_PARTS.format('NOT IN (SELECT purpose FROM outreach_pauses)')}"
)
# ``AttemptQueue.claim`` on PostgreSQL: ``WorkQueue.claim``'s lease statement written out once
# in the same way (the takeover count it adds to is unchanged by a first claim). The paused
# purposes are an array read once per statement (``<> ALL``), not ``NOT IN`` a subquery: with
# one claimer it cost the database ~4 us less per claimed row (9.8 against 13.7 us), ~20% more
# claims/s; with four claimers ~10% fewer (measured alternately). The round's statement above
# keeps ``NOT IN``: the change was not measured there.
_LEASE_DUE = text(
    f"""
    UPDATE outreach_attempts
    SET state = '{AttemptState.CLAIMED.value}', worker_id = :worker_id, lease_token = :token,
        lease_expires_at = :lease_until, updated_at = :now
    WHERE id IN (
        SELECT id {_DUE_PARTS.format("<> ALL (ARRAY(SELECT purpose FROM outreach_pauses))")})
    RETURNING {_RETURNED}"""
)
_HOLD_DUE = text(_HELD_PARTS).columns(not_before=UtcDateTime())
_HOLD_DUE_LOCKED = text(
    f"""
    WITH claimed AS ({_HELD_PARTS})
    SELECT claimed.*, (
        SELECT count(pg_advisory_xact_lock(client_id))
        FROM (SELECT DISTINCT client_id FROM claimed ORDER BY client_id) AS ordered
    ) AS locked_keys
    FROM claimed
    """
).columns(not_before=UtcDateTime())
_due_order = operator.itemgetter(_CLAIM_COLUMNS.index("not_before"), 0)  # (not_before, id)


async def _hold_due(
    session: AsyncSession, now: datetime, limit: int, lock_clients: bool
) -> list[Claim]:
    """Lock up to ``limit`` due attempts of purposes not paused for this transaction, in due
    order (PostgreSQL); with ``lock_clients`` also their clients' advisory locks."""
    stmt = _HOLD_DUE_LOCKED if lock_clients else _HOLD_DUE
    rows = list(await session.execute(stmt, {"now": now, "limit": limit}))
    rows.sort(key=_due_order)
    return _claims(rows, uuid.uuid4().hex, False, _JSON_LOADS)


def _claims(
    rows: Iterable[Sequence[Any]],
    token: str,
    resumed: bool,
    loads: Callable[[str], Any] | None = None,
) -> list[Claim]:
    """Claims of rows with the columns of ``_CLAIM_COLUMNS`` first, in that order (a tuple
    unpacked and an ``Attempt`` built from positions: once per claimed row); ``loads``
    decodes a payload read as text."""
    return [
        Claim(
            Attempt(
                id_,
                client_id,
                _PURPOSE[purpose],  # a dict, not Purpose(...)
                _CHANNEL[channel],
                _STATE[state],
                not_before,
                key,
                attempt_no,
                reason,
                (payload if loads is None else loads(payload) or {}) if payload else {},
                our_failures,
            ),
            token,
            resumed,
            takeovers,
            fallback_of,
        )
        for (
            id_,
            client_id,
            purpose,
            channel,
            state,
            not_before,
            key,
            attempt_no,
            reason,
            payload,
            fallback_of,
            takeovers,
            our_failures,
            *_rest,
        ) in rows
    ]


_JSON_LOADS = json.JSONDecoder().decode
_LOCK_CLIENTS = (
    "SELECT count(pg_advisory_xact_lock(x)) FROM (SELECT x FROM "
    "unnest(CAST(:client_ids AS BIGINT[])) AS x ORDER BY x) AS ordered"
)
# The claimed clients' contacts and the purposes paused now, in one statement (one row at
# least: the paused purposes come with a contact-less row when there are no contacts). Each
# client's contacts are looked up by its id in the contacts' client index (a lateral join
# over the ids, kept apart by ``OFFSET 0``): the planner cannot turn it into a scan of every
# recent contact, which it did
# with ``client_id = ANY(...)`` when the table's statistics were stale or missing (a fresh or
# quickly growing table), one full read of the week's contacts per round.
_HISTORY = text(
    """
    SELECT p.paused, h.client_id, h.channel, h.at, h.attempt_id, h.attempt_no
    FROM (SELECT ARRAY(SELECT purpose FROM outreach_pauses) AS paused) AS p
    LEFT JOIN (
        SELECT c.client_id, c.channel, c.at, c.attempt_id, c.attempt_no
        FROM unnest(CAST(:ids AS BIGINT[])) AS x(id)
        CROSS JOIN LATERAL (
            SELECT client_id, channel, at, attempt_id, attempt_no FROM outreach_contacts
            WHERE client_id = x.id AND at >= :since OFFSET 0
        ) AS c
    ) AS h ON true
    """
).columns(at=UtcDateTime())


async def _pacing_lock(session: AsyncSession) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": PACING_LOCK[0], "b": PACING_LOCK[1]}
    )


async def _lock_clients(session: AsyncSession, client_ids: Sequence[int]) -> None:
    """The clients' advisory locks, in id order (PostgreSQL)."""
    await session.execute(text(_LOCK_CLIENTS), {"client_ids": list(client_ids)})


def _due_again(f: Finish, now: datetime) -> bool:
    """The finish makes an attempt due at once: a retry or a fallback call without a delay."""
    if f.state is AttemptState.RETRY_SCHEDULED and f.retry_at is not None and f.retry_at <= now:
        return True
    return f.fallback is not None and f.fallback.not_before <= now


def _due_state() -> Any:
    """Back in the queue: 'retry_scheduled' if it ran before, else 'planned'."""
    return case(
        (A.c.attempt_no > 1, AttemptState.RETRY_SCHEDULED.value),
        else_=AttemptState.PLANNED.value,
    )


def _finish_columns(items: Sequence[Finish], now: datetime) -> dict[str, list[Any]]:
    """The arrays of ``finish_many`` in one pass over the finishes: the values of
    :func:`_finish_params` and of ``AttemptQueue._outcome_row`` without a dict per row."""
    columns: dict[str, list[Any]] = {name: [] for name in FINISH_COLUMNS}
    ids, tokens, states, not_befores, attempt_nos, outcomes, details, finished = (
        columns[name] for name in FINISH_COLUMNS[:8]
    )
    our_failures, exec_nos, outcome_details, sip_codes, refs, data, recorded = (
        columns[name] for name in FINISH_COLUMNS[8:]
    )
    retrying = AttemptState.RETRY_SCHEDULED
    for f in items:
        a = f.claim.attempt
        o = f.outcome
        retry = f.state is retrying
        ids.append(a.id)
        tokens.append(f.claim.token)
        states.append(_STATE_TEXT[f.state])
        not_befores.append(f.retry_at if retry and f.retry_at else a.not_before)
        attempt_nos.append(a.attempt_no + 1 if retry else a.attempt_no)
        outcomes.append(_OUTCOME_TEXT[o.kind])
        details.append(f.detail or o.detail)
        finished.append(None if retry else now)
        our_failures.append(a.our_failures + 1 if o.ours else a.our_failures)
        exec_nos.append(a.attempt_no)
        outcome_details.append(o.detail)
        sip_codes.append(o.sip_code)
        refs.append(o.ref)
        data.append(ENCODE_JSON(dict(o.data)) if o.data else None)
        recorded.append(o.finished_at or now)
    return columns


_STATE_TEXT = {s: s.value for s in AttemptState}
_CHANNEL_TEXT = {c: c.value for c in ChannelKind}
_OUTCOME_TEXT = {k: k.value for k in OutcomeKind}


def _finish_params(f: Finish, now: datetime) -> dict[str, Any]:
    a = f.claim.attempt
    retry = f.state is AttemptState.RETRY_SCHEDULED
    return {
        "b_id": a.id,
        "b_state": f.state.value,
        "b_not_before": f.retry_at if retry and f.retry_at else a.not_before,
        "b_attempt_no": a.attempt_no + 1 if retry else a.attempt_no,
        "b_our_failures": a.our_failures + 1 if f.outcome.ours else a.our_failures,
        "b_outcome": f.outcome.kind.value,
        "b_detail": f.detail or f.outcome.detail,
        "b_finished": None if retry else now,
    }


async def pace_counts(
    session: AsyncSession, hour_start: datetime, day_start: datetime
) -> dict[tuple[ChannelKind, Purpose], tuple[int, int]]:
    """Contacts started since ``hour_start`` and since ``day_start``, per channel and purpose."""
    in_hour = func.sum(case((C.c.at >= hour_start, 1), else_=0))
    rows = await session.execute(
        select(C.c.channel, C.c.purpose, in_hour, func.count())
        .where(C.c.at >= min(hour_start, day_start), C.c.purpose.is_not(None))
        .group_by(C.c.channel, C.c.purpose)
    )
    return {(ChannelKind(r[0]), Purpose(r[1])): (int(r[2] or 0), int(r[3])) for r in rows}
