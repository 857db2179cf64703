"""The dispatcher: claims due attempts, checks the contact policies, executes them through
channels and records each outcome once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from outreach.batching import Batcher
from outreach.caps import cap_reached_until, history_since
from outreach.channel_choice import choose_channel
from outreach.hours import HolidayCheck, next_allowed, no_holidays
from outreach.metrics import OutreachMetrics
from outreach.pacing import hour_and_day_start, pace_until
from outreach.permissions import channel_permitted, client_ad_consents, client_consents
from outreach.queue import (
    AttemptQueue,
    Claim,
    Decide,
    Decision,
    Defer,
    Finish,
    NewAttempt,
    Round,
    SettleContext,
    Skip,
    Start,
)
from outreach.retries import after_outcome
from outreach.rules import ContactRules
from povtor.db import utcnow
from povtor.domain import Attempt, AttemptState, ChannelKind, Client, Outcome, OutcomeKind
from povtor.errors import ChannelDown, ChannelStopping, ChannelUnavailable
from povtor.ports import Channel, ClientLookup, Draining

log = logging.getLogger(__name__)
ClientsIn = Callable[[AsyncSession, Sequence[int]], Awaitable[Mapping[int, Client]]]
MAX_RETRY_DELAY_S = 5.0  # between dispatch rounds while the database is unreachable
_SENT = (OutcomeKind.DELIVERED, OutcomeKind.ANSWERED)  # a Telegram outcome of a message sent


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    batch_size: int = 1000
    concurrency: int = 10
    poll_interval_s: float = 1.0
    drain_timeout_s: float = 30.0
    max_takeovers: int = 3
    reap_interval_s: float = 5.0
    channel_down_retry_s: float = 30.0  # a channel that is away: its attempts wait this long


def execution_key(idempotency_key: str, attempt_no: int) -> str:
    """What a channel must be idempotent on: one execution of one attempt."""
    return f"{idempotency_key}#{attempt_no}"


class Dispatcher:
    def __init__(
        self,
        queue: AttemptQueue,
        clients: ClientLookup,
        channels: Mapping[ChannelKind, Channel],
        rules: ContactRules,
        *,
        settings: DispatchSettings = DispatchSettings(),
        is_holiday: HolidayCheck = no_holidays,
        metrics: OutreachMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_recorded: Callable[[], None] | None = None,
        unavailable: Callable[[ChannelKind], str | None] | None = None,
        clients_in: ClientsIn | None = None,
    ) -> None:
        # ``clients_in``: the same lookup as ``clients`` in a transaction of the caller's
        # (the composition root passes the history store's loader): a round then reads its
        # clients on its own connection, one round trip, instead of checking out another.
        self.clients_in = clients_in
        self.unavailable = unavailable  # why a channel cannot be used now (Telegram away)
        self.queue = queue
        self.clients = clients
        self.channels = dict(channels)
        self.rules = rules
        self.settings = settings
        self.is_holiday = is_holiday
        self.metrics = metrics or OutreachMetrics()
        self.clock = clock
        self._on_recorded = on_recorded
        self._inflight = 0  # executions whose channel has not returned yet
        self._slot_free = asyncio.Event()
        self.woken = 0  # waits for work cut short by a wake-up (this process or a NOTIFY)
        self.idle = asyncio.Event()  # set while the loop waits: nothing was due
        self._recorder: Batcher[Finish] = Batcher(self._record)
        self.recorded = 0
        self._clients: dict[int, Client] = {}  # loaded at settle time, used by the execution
        self._round_clients: Mapping[int, Client] = {}  # the clients of the round deciding
        self._not_started: list[Claim] = []  # executions a stopping channel did not begin
        # the metrics' labelled children, looked up once (``labels`` costs a lock and a hash)
        self._gauges: dict[ChannelKind, Any] = {}
        self._outcome_counters: dict[tuple[ChannelKind, OutcomeKind, AttemptState], Any] = {}

    def wake(self) -> None:
        """New attempts may be due (a channel is back). The queue wakes the dispatcher itself
        when its writes make attempts due, in this process or, on PostgreSQL, another one."""
        self.queue.work.wake()

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop``; then drain in-flight executions for up to the drain
        timeout, cancel the rest and give back every claim."""
        executions: set[asyncio.Task[None]] = set()
        self._recorder = Batcher(self._record, max_batch=self.settings.batch_size)
        self._recorder.hold(True)  # the loop's rounds write the outcomes
        try:
            async with asyncio.TaskGroup() as tg:
                recorder = tg.create_task(self._recorder.run())
                renewer = tg.create_task(self._renew_leases())
                drainer = tg.create_task(self._drain_on(stop))
                listener = tg.create_task(self.queue.keep_listening())
                try:
                    await self._loop(stop, executions)
                finally:
                    listener.cancel()
                    self._recorder.hold(False)  # no more rounds: the recorder writes
                    self._begin_drain()
                    await self._drain(executions)
                    self._recorder.close()
                    await recorder
                    renewer.cancel()
                    drainer.cancel()
        finally:
            await self.queue.close()
            now = self.clock()
            given_back = await self.queue.give_back(self._not_started, now)
            released = await self.queue.release(now, expire_in_progress=True)
            if released or given_back:
                log.info(
                    "released %d attempts held by this worker (%d never started)",
                    released + given_back,
                    given_back,
                )

    async def _drain_on(self, stop: asyncio.Event) -> None:
        await stop.wait()  # at once, not after the loop's current round
        self._begin_drain()

    def _begin_drain(self) -> None:
        """Stopping: channels that can start no new contact and close the ones in progress."""
        for channel in self.channels.values():
            if isinstance(channel, Draining):
                channel.begin_drain()

    async def run_until_idle(self) -> int:
        """Dispatch everything due now and wait for it (tests, one-shot runs); returns the
        number of decisions taken."""
        self._recorder = Batcher(self._record, max_batch=self.settings.batch_size)
        self._recorder.hold(True)
        decided = 0
        executions: list[asyncio.Task[None]] = []
        try:
            async with asyncio.TaskGroup() as tg:
                recorder = tg.create_task(self._recorder.run())
                try:
                    while True:
                        now = self.clock()
                        limit = self.settings.batch_size
                        done = await self._round(now, limit, take_over=True)
                        if not done.claims and not self._recorder.pending:
                            break
                        decided += len(done.decisions)
                        for d in done.decisions:
                            if isinstance(d, Start):
                                self._inflight += 1
                                executions.append(asyncio.create_task(self._execute(d)))
                        while self._inflight:  # until every channel has returned
                            self._slot_free.clear()
                            await self._slot_free.wait()
                finally:
                    self._recorder.hold(False)
                    await asyncio.gather(*executions)
                    self._recorder.close()
                    await recorder
        finally:
            await self.queue.close()
        return decided

    async def _loop(self, stop: asyncio.Event, executions: set[asyncio.Task[None]]) -> None:
        last_reap = datetime.min.replace(tzinfo=self.clock().tzinfo)
        failures = 0
        wakeup = self.queue.work.wakeup
        while not stop.is_set():
            # Outcomes waiting to be written beyond one batch hold slots too: when the database
            # falls behind, claiming more would only lengthen that queue.
            backlog = max(0, self._recorder.unwritten - self.settings.batch_size)
            free = self.settings.concurrency - self._inflight - backlog
            self._slot_free.clear()  # an execution ending from here on finds a round looking
            if free <= 0 and not self._recorder.pending:
                await _first(stop.wait(), self._slot_free.wait())
                continue
            now = self.clock()
            limit = max(0, min(free, self.settings.batch_size))
            wakeup.clear()  # a wake-up from here on finds the next round looking again
            reap = now - last_reap >= timedelta(seconds=self.settings.reap_interval_s)
            try:
                if failures:
                    # A failed round may have claimed attempts it never settled; between rounds
                    # this worker holds no claimed ones (settling starts or defers them), and its
                    # lease renewal would keep such orphans from ever being taken over.
                    orphans = await self.queue.release(now, expire_in_progress=False)
                    if orphans:
                        log.info("gave back %d attempts claimed by a failed round", orphans)
                done = await self._round(now, limit, take_over=reap)
            except Exception:
                # The database went away (a restart, a failover): keep the worker, try again.
                failures += 1
                delay = min(self.settings.poll_interval_s * 2**failures, MAX_RETRY_DELAY_S)
                log.exception("dispatch round failed (retry %d in %.1f s)", failures, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
                continue
            if reap:
                last_reap = now
            if failures:
                log.warning("dispatching again after %d failed rounds", failures)
                failures = 0
            if not done.claims:
                if self._recorder.pending or done.recorded:
                    continue  # outcomes came in meanwhile: write them (and look again)
                self.idle.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.poll_interval_s):
                        await _first(stop.wait(), wakeup.wait_set(), self._slot_free.wait())
                self.idle.clear()
                if wakeup.is_set():
                    self.woken += 1
                continue
            self.metrics.claims.inc(len(done.claims))
            for decision in done.decisions:
                if isinstance(decision, Start):
                    self._inflight += 1
                    task = asyncio.create_task(self._execute(decision))
                    executions.add(task)
                    task.add_done_callback(executions.discard)

    async def _drain(self, executions: set[asyncio.Task[None]]) -> None:
        if not executions:
            return
        log.info(
            "draining %d executions (up to %.0f s)", len(executions), self.settings.drain_timeout_s
        )
        _done, pending = await asyncio.wait(executions, timeout=self.settings.drain_timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%d executions cut short by the drain timeout", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    async def _renew_leases(self) -> None:
        interval = max(self.queue.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.queue.renew_leases(self.clock())
            except Exception:
                log.exception("lease renewal failed")

    # -- policies at the moment of contact ----------------------------------------------------

    async def _round(self, now: datetime, limit: int, *, take_over: bool) -> Round:
        """One round in one transaction: the outcomes waiting to be written, then up to
        ``limit`` claims (with ``take_over``, expired leases first) settled against the
        policies."""
        taken = self._recorder.take(self.settings.batch_size)
        try:
            done = await self.queue.dispatch(
                now,
                limit,
                finished=[f for f, _ in taken],
                take_over=take_over,
                since=history_since(now),
                decider=lambda claims, session: self._decider(claims, now, session),
                pace_since=self._pace_since(now),
            )
        except BaseException:
            self._recorder.put_back(taken)
            raise
        self._recorder.written(taken)
        self._recorded(done.recorded, len(taken))
        self._settled(done.decisions)
        return done

    async def _settle(self, claims: list[Claim], now: datetime) -> list[Decision]:
        decide = await self._decider(claims, now)
        decisions = await self.queue.settle(
            claims, now, history_since(now), decide, pace_since=self._pace_since(now)
        )
        self._settled(decisions)
        return decisions

    def _pace_since(self, now: datetime) -> tuple[datetime, datetime] | None:
        return hour_and_day_start(now, self.rules.pacing_timezone) if self.rules.pacing else None

    async def _decider(
        self, claims: list[Claim], now: datetime, session: AsyncSession | None = None
    ) -> Decide:
        """Loads the claims' clients (their consents and opt-outs as they are now), in the
        round's transaction when the dispatcher has a loader for it; returns the function
        deciding each claim."""
        ids = sorted({c.attempt.client_id for c in claims})
        if session is not None and self.clients_in is not None:
            clients = await self.clients_in(session, ids)
        else:
            clients = await self.clients.get_clients(ids)
        self._round_clients = clients

        def decide(
            claim: Claim, calls: list[datetime], messages: list[datetime], ctx: SettleContext
        ) -> Decision:
            client = clients.get(claim.attempt.client_id)
            return self.decide(claim, client, now, calls, messages, ctx)

        return decide

    def _settled(self, decisions: list[Decision]) -> None:
        clients, self._round_clients = self._round_clients, {}
        for d in decisions:
            if isinstance(d, Start):
                self._clients[d.claim.attempt.id] = clients[d.claim.attempt.client_id]
            elif isinstance(d, Skip):
                log.info("attempt %d skipped: %s", d.claim.attempt.id, d.why)

    def decide(
        self,
        claim: Claim,
        client: Client | None,
        now: datetime,
        calls: list[datetime],
        messages: list[datetime],
        ctx: SettleContext | None = None,
    ) -> Decision:
        """Start now, defer (paused, quiet hours, caps, pacing) or skip (no client, no
        permitted channel)."""
        attempt = claim.attempt
        ctx = ctx or SettleContext()
        if client is None:
            return Skip(claim, "client no longer exists")
        if attempt.purpose in ctx.paused:  # claimed just before the pause: back in the queue
            return Defer(claim, now, "paused")
        if claim.takeovers > self.settings.max_takeovers:
            return Skip(claim, f"interrupted {claim.takeovers} times")

        def permitted(kind: ChannelKind) -> bool:
            return kind in self.channels and channel_permitted(
                kind,
                opted_out=client.opted_out,
                consents=client_consents(client),
                require_consent=self.rules.require_consent,
                purpose=attempt.purpose,
                ad_consents=client_ad_consents(client),
                require_ad_consent=self.rules.require_ad_consent,
            )

        channel: ChannelKind | None = attempt.channel
        telegram_usable = client.telegram_chat_id is not None and client.telegram_reachable
        usable = permitted(attempt.channel) and (
            attempt.channel is ChannelKind.CALL or telegram_usable
        )
        if not usable:
            if claim.resumed or claim.fallback_of is not None:
                return Skip(claim, f"{attempt.channel.value} no longer permitted")
            channel = choose_channel(
                preferred=client.preferred_channel,
                telegram_linked=client.telegram_chat_id is not None,
                telegram_reachable=client.telegram_reachable,
                permitted=permitted,
            )
            if channel is None:
                return Skip(claim, "opted out" if client.opted_out else "no permitted channel")
        assert channel is not None
        problem = self.unavailable(channel) if self.unavailable is not None else None
        if problem is not None:  # our side: not counted against the client, tried again later
            later = now + timedelta(seconds=self.settings.channel_down_retry_s)
            return Defer(claim, later, f"{channel.value} unavailable: {problem}"[:200])
        zone_key = (now, client.timezone, channel)
        allowed = ctx.allowed.get(zone_key)
        if allowed is None:
            allowed = next_allowed(now, client.timezone, channel, self.rules, self.is_holiday)
            ctx.allowed[zone_key] = allowed
        if allowed > now:
            return Defer(claim, allowed, "quiet hours")
        caps = self.rules.call_caps if channel is ChannelKind.CALL else self.rules.message_caps
        past = calls if channel is ChannelKind.CALL else messages
        until = cap_reached_until(now, client.timezone, past, caps)
        if until is not None:
            later = next_allowed(until, client.timezone, channel, self.rules, self.is_holiday)
            return Defer(claim, later, "contact cap reached")
        paced = pace_until(
            now,
            channel,
            attempt.purpose,
            ctx.counts,
            self.rules.pacing,
            tz_name=self.rules.pacing_timezone,
        )
        if paced is not None:
            at, why = paced
            later = next_allowed(at, client.timezone, channel, self.rules, self.is_holiday)
            return Defer(claim, later, why)
        return Start(claim, channel)

    # -- execution ----------------------------------------------------------------------------

    async def _execute(self, start: Start) -> None:
        claim = start.claim
        attempt = _in_progress(claim.attempt, start.channel)
        client = self._clients.pop(attempt.id)
        channel = self.channels[start.channel]
        gauge = self._gauges.get(start.channel)
        if gauge is None:
            gauge = self._gauges[start.channel] = self.metrics.in_progress.labels(
                start.channel.value
            )
        gauge.inc()
        try:
            try:
                outcome = await channel.execute(attempt, client)
            except ChannelStopping:
                self._not_started.append(claim)  # given back when the drain ends
                return
            except ChannelDown as err:  # our side (trunk down): retried, not the client's
                outcome = Outcome(OutcomeKind.FAILED, detail=str(err)[:200], ours=True)
            except ChannelUnavailable as err:
                outcome = Outcome(OutcomeKind.UNREACHABLE, detail=str(err)[:200])
            except Exception as err:  # a channel bug must not kill the worker
                log.exception("attempt %d: channel %s failed", attempt.id, start.channel.value)
                outcome = Outcome(OutcomeKind.FAILED, detail=f"{type(err).__name__}")
        finally:
            # The channel is free again: the next contact may start while this outcome is
            # written (the attempt stays leased, so nobody else takes it meanwhile).
            gauge.dec()
            self._inflight -= 1
            self._slot_free.set()
        # Written by the next round (or, stopping, by the recorder), which frees the slot the
        # outcome holds while it waits (see the loop's backlog); the execution ends here.
        self._recorder.put(self._finish(claim, start.channel, client, outcome))

    def _finish(
        self, claim: Claim, channel: ChannelKind, client: Client, outcome: Outcome
    ) -> Finish:
        now = self.clock()
        attempt = claim.attempt
        after = after_outcome(
            outcome.kind, channel, attempt.client_try, now, self.rules, ours=outcome.ours
        )
        retry_at = after.retry_at
        if retry_at is not None:
            retry_at = next_allowed(
                retry_at, client.timezone, channel, self.rules, self.is_holiday
            )
        fallback = None
        if after.fallback_call_at is not None:
            fallback = NewAttempt(
                client_id=attempt.client_id,
                purpose=attempt.purpose,
                channel=ChannelKind.CALL,
                not_before=after.fallback_call_at,
                idempotency_key=f"{attempt.idempotency_key}:call",
                reason=f"{attempt.reason}; Telegram: {outcome.kind.value}",
                payload={**attempt.payload, "fallback_of": attempt.id},
                fallback_of=attempt.id,
            )
        return Finish(claim, channel, outcome, after.state, retry_at, fallback, after.reason)

    async def _record(self, items: list[Finish]) -> None:
        self._recorded(await self.queue.finish(items, self.clock()), len(items))
        self._slot_free.set()  # written: the slots these outcomes held are free

    def _recorded(self, done: list[Finish], written: int) -> None:
        refused = written - len(done)
        if refused:
            log.warning("%d outcomes refused: their leases were taken over", refused)
        # counted per kind of outcome, one increment each (a counter's increment takes a lock)
        kinds = collections.Counter((f.channel, f.outcome.kind, f.state) for f in done)
        for key, n in kinds.items():
            counter = self._outcome_counters.get(key)
            if counter is None:
                channel, kind, state = key
                counter = self._outcome_counters[key] = self.metrics.outcomes.labels(
                    channel.value, kind.value, state.value
                )
            counter.inc(n)
            if key[0] is ChannelKind.TELEGRAM and key[1] in _SENT:
                self.metrics.messages_sent.inc(n)
        self.recorded += len(done)
        if done and self._on_recorded is not None:
            self._on_recorded()


def _in_progress(a: Attempt, channel: ChannelKind) -> Attempt:
    """The attempt as its execution sees it: in progress on ``channel`` (what
    ``dataclasses.replace`` gives, at a third of its cost: once per execution)."""
    return Attempt(
        a.id,
        a.client_id,
        a.purpose,
        channel,
        AttemptState.IN_PROGRESS,
        a.not_before,
        a.idempotency_key,
        a.attempt_no,
        a.reason,
        a.payload,
        a.our_failures,
    )


async def _first(*aws: object) -> None:
    """Wait until the first of several coroutines finishes; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
