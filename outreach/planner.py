"""The planner: candidates from the history store (set-based SQL, page by page) become
planned attempts with a channel and a first allowed moment."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable, Collection, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from outreach.channel_choice import choose_channel
from outreach.hours import HolidayCheck, next_allowed, no_holidays
from outreach.metrics import OutreachMetrics
from outreach.permissions import channel_permitted
from outreach.queue import AttemptQueue, NewAttempt
from outreach.rules import ContactRules
from povtor.db import utcnow
from povtor.domain import Candidate, ChannelKind, Purpose
from povtor.lifecycle import Periodic
from povtor.ports import DuePage, PlanningRules, PlanningSource, SuppressionSource

log = logging.getLogger(__name__)
ALL_CHANNELS = frozenset(ChannelKind)
CHURN_QUESTIONS = ("why_stopped", "what_would_bring_back")  # the channels word them in Russian
PURPOSE_ORDER = (Purpose.NPS, Purpose.REORDER, Purpose.WINBACK)  # within a page
WRITES_AT_ONCE = 3  # inserts of planned attempts under way while the next items are planned
READS_AHEAD = 2  # pages being read (a connection each) while the items of an earlier are planned
# The cyclic collector's first threshold during a pass. A pass allocates several objects per
# candidate, few of them in cycles; at the default (700) the young collections it set off led
# to full ones over everything the process holds: about a third of a pass's Python CPU.
PASS_GC_THRESHOLD = 20_000


class _Passes:
    """The passes under way in this process that raised the threshold (the collector's
    thresholds are the process's, so is this count) and the thresholds before the first."""

    running = 0
    before = gc.get_threshold()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's first threshold while a pass runs (never lower it); the last pass
    to end restores the thresholds as they were before the first began."""
    if _Passes.running == 0:
        _Passes.before = gc.get_threshold()
        first, *rest = _Passes.before
        gc.set_threshold(max(first, PASS_GC_THRESHOLD), *rest)
    _Passes.running += 1
    try:
        yield
    finally:
        _Passes.running -= 1
        if _Passes.running == 0:
            gc.set_threshold(*_Passes.before)


@dataclass(frozen=True, slots=True)
class PlanItem:
    candidate: Candidate
    channel: ChannelKind
    not_before: datetime

    def to_json(self) -> dict[str, str]:
        """The stable `povtor plan --dry-run --json` line."""
        return {
            "client": self.candidate.external_id,
            "purpose": self.candidate.purpose.value,
            "channel": self.channel.value,
            "not_before": self.not_before.isoformat(),
            "reason": self.candidate.reason,
        }


def plan_candidate(
    candidate: Candidate,
    now: datetime,
    rules: ContactRules,
    *,
    is_holiday: HolidayCheck = no_holidays,
    channels: Collection[ChannelKind] = ALL_CHANNELS,
) -> PlanItem | None:
    """Channel and first allowed moment for one candidate; None if no channel may be used."""
    channel = _channel(candidate, rules, channels)
    if channel is None:
        return None
    start = max(candidate.due_at, now)
    return PlanItem(
        candidate, channel, next_allowed(start, candidate.timezone, channel, rules, is_holiday)
    )


def _channel(
    candidate: Candidate, rules: ContactRules, channels: Collection[ChannelKind]
) -> ChannelKind | None:
    def permitted(kind: ChannelKind) -> bool:
        return kind in channels and channel_permitted(
            kind,
            opted_out=candidate.opted_out,
            consents=candidate.consents,
            require_consent=rules.require_consent,
            purpose=candidate.purpose,
            ad_consents=candidate.ad_consents,
            require_ad_consent=rules.require_ad_consent,
        )

    return choose_channel(
        preferred=candidate.preferred_channel,
        telegram_linked=candidate.telegram_linked,
        telegram_reachable=candidate.telegram_reachable,
        permitted=permitted,
    )


class PassPlan:
    """``plan_candidate`` for the many candidates of one pass, each answer computed once.

    The channel depends only on a candidate's purpose, preference, Telegram link, opt-out and
    consents (a few dozen combinations in a pass); the first allowed moment only on the start,
    the zone and the channel, and the candidates the planning SQL finds are due already, so
    their start is the pass's moment: one answer per zone and channel. Both are pure functions
    of those keys under the pass's rules, so the items are exactly ``plan_candidate``'s."""

    def __init__(
        self,
        now: datetime,
        rules: ContactRules,
        *,
        is_holiday: HolidayCheck = no_holidays,
        channels: Collection[ChannelKind] = ALL_CHANNELS,
    ) -> None:
        self.now = now
        self.rules = rules
        self.is_holiday = is_holiday
        self.channels = channels
        self._channels: dict[tuple[object, ...], ChannelKind | None] = {}
        self._now_in: dict[tuple[str, ChannelKind], datetime] = {}  # start = the pass's moment

    def __call__(self, c: Candidate) -> PlanItem | None:
        key = (
            c.purpose,
            c.preferred_channel,
            c.telegram_linked,
            c.telegram_reachable,
            c.opted_out,
            c.consents,
            c.ad_consents,
        )
        try:
            channel = self._channels[key]
        except KeyError:
            channel = self._channels[key] = _channel(c, self.rules, self.channels)
        if channel is None:
            return None
        if self.now > c.due_at:  # the start is max(due_at, now), as in plan_candidate
            try:
                not_before = self._now_in[c.timezone, channel]
            except KeyError:
                not_before = self._now_in[c.timezone, channel] = self._next(self.now, c, channel)
        else:
            not_before = self._next(c.due_at, c, channel)
        return PlanItem(c, channel, not_before)

    def _next(self, start: datetime, c: Candidate, channel: ChannelKind) -> datetime:
        return next_allowed(start, c.timezone, channel, self.rules, self.is_holiday)


class Planner:
    def __init__(
        self,
        source: PlanningSource,
        queue: AttemptQueue,
        contact_rules: ContactRules,
        planning_rules: PlanningRules,
        *,
        is_holiday: HolidayCheck = no_holidays,
        channels: Collection[ChannelKind] = ALL_CHANNELS,
        batch_size: int = 10_000,
        metrics: OutreachMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_planned: Callable[[], None] | None = None,
        approval_threshold: int = 0,
        after_pass: Callable[[], None] | None = None,
        erased: SuppressionSource | None = None,
    ) -> None:
        self.source = source
        self.erased = erased  # clients erased on request: never planned, even if re-created
        self.queue = queue
        self.contact_rules = contact_rules
        # The SQL leaves out whom the contact policies would refuse anyway (same rule).
        self.planning_rules = replace(
            planning_rules, require_ad_consent=contact_rules.require_ad_consent
        )
        self.is_holiday = is_holiday
        self.channels = frozenset(channels) or ALL_CHANNELS
        self.batch_size = batch_size
        self.metrics = metrics or OutreachMetrics()
        self.clock = clock
        self._on_planned = on_planned
        self._after_pass = after_pass  # every finished pass (the stored reports follow it)
        self.approval_threshold = approval_threshold  # 0: every pass goes out at once
        self.last_held = 0  # attempts the last pass left waiting for approval

    async def pages(
        self, as_of: datetime, purposes: Collection[Purpose] = tuple(Purpose)
    ) -> AsyncGenerator[list[PlanItem], None]:
        """Plan items page by page of clients, nothing written: each list one purpose's items
        of one page (in a page NPS, then reorder, then win-back), in client order. The next
        ``READS_AHEAD`` pages are read while the caller works on this one."""
        window = timedelta(days=self.planning_rules.nps_window_days)
        plan = PassPlan(
            as_of, self.contact_rules, is_holiday=self.is_holiday, channels=self.channels
        )
        wanted = [p for p in PURPOSE_ORDER if p in purposes]
        erased = await self.erased.suppression_list() if self.erased is not None else None

        ahead: deque[asyncio.Task[DuePage]] = deque()  # the pages being read, in order
        after: int | None = 0  # the last client id of the last page whose read started

        async def read_ahead() -> None:
            nonlocal after
            while after is not None and len(ahead) < READS_AHEAD:
                upto = await self.source.page_end(after_client_id=after, limit=self.batch_size)
                if upto is not None:
                    ahead.append(
                        asyncio.ensure_future(
                            self.source.due(
                                as_of,
                                self.planning_rules,
                                wanted,
                                after_client_id=after,
                                limit=self.batch_size,
                                upto=upto,
                            )
                        )
                    )
                after = upto

        try:
            await read_ahead()
            while ahead:
                page = await ahead.popleft()
                await read_ahead()
                for purpose in wanted:
                    candidates = list(page.candidates[purpose])
                    if purpose is Purpose.NPS and candidates:  # once per client in the window
                        asked = await self.queue.recently_asked(
                            [c.client_id for c in candidates], Purpose.NPS, as_of - window
                        )
                        candidates = [c for c in candidates if c.client_id not in asked]
                    if erased:
                        candidates = [
                            c for c in candidates if not erased.matches((), c.external_id)
                        ]
                    items = [item for c in candidates if (item := plan(c)) is not None]
                    if items:
                        yield items
        finally:
            for task in ahead:  # the caller stopped early, or a read failed
                task.cancel()
            for task in ahead:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def run_once(self, as_of: datetime | None = None) -> int:
        """One planning pass: new attempts written (existing keys left alone), page by page
        of clients, every purpose of a page from one read; the database reads the next page
        and writes this one's attempts while Python plans.

        With an approval threshold, the pass writes its attempts into one campaign per
        purpose, waiting; at the end, a pass that created no more than the threshold releases
        them, a larger one leaves them for a manager (first-run protection: a new base does not
        flood its clients on day one)."""
        when = as_of or self.clock()
        gated = self.approval_threshold > 0
        campaigns: dict[int, int] = {}
        campaign_of: dict[Purpose, int] = {}
        writing: set[asyncio.Task[int]] = set()  # a few pages' inserts under way at once

        async def write(items: list[PlanItem], purpose: Purpose, campaign: int | None) -> int:
            added = await self.queue.add(
                [_attempt(i) for i in items], self.clock(), campaign_id=campaign
            )
            self.metrics.planned.labels(purpose.value).inc(added)
            if campaign is not None:
                campaigns[campaign] += added
            elif added and self._on_planned is not None:
                self._on_planned()
            return added

        total = 0
        with fewer_collections():  # see PASS_GC_THRESHOLD
            try:
                async with contextlib.aclosing(self.pages(when)) as pages:
                    async for items in pages:
                        purpose = items[0].candidate.purpose
                        campaign = campaign_of.get(purpose)
                        if gated and campaign is None:
                            campaign = campaign_of[purpose] = await self.queue.open_campaign(
                                purpose, self.clock()
                            )
                            campaigns[campaign] = 0
                        writing.add(asyncio.ensure_future(write(items, purpose, campaign)))
                        if len(writing) >= WRITES_AT_ONCE:
                            done, writing = await asyncio.wait(
                                writing, return_when=asyncio.FIRST_COMPLETED
                            )
                            total += sum(task.result() for task in done)
                while writing:
                    done, writing = await asyncio.wait(
                        writing, return_when=asyncio.FIRST_COMPLETED
                    )
                    total += sum(task.result() for task in done)
            finally:
                for task in writing:  # a failed read or write: the other writes stop
                    task.cancel()
                await asyncio.gather(*writing, return_exceptions=True)
        self.last_held = 0
        if campaigns:
            hold = total > self.approval_threshold
            await self.queue.close_campaigns(campaigns, self.clock(), hold=hold)
            if hold:
                self.last_held = total
                log.warning(
                    "planning pass created %d attempts (over the approval threshold of %d): "
                    "they wait for a manager's approval on the outreach page",
                    total,
                    self.approval_threshold,
                )
            elif total and self._on_planned is not None:
                self._on_planned()
        log.info("planning pass as of %s: %d new attempts", when.isoformat(), total)
        if self._after_pass is not None:
            self._after_pass()
        return total

    async def run(self, stop: asyncio.Event, *, interval_s: float = 600.0) -> None:
        await Periodic("planning pass", self.run_once, interval_s).run(stop)


def _attempt(item: PlanItem) -> NewAttempt:
    c = item.candidate
    purpose = c.purpose
    payload: dict[str, Any] = {"purpose": _PURPOSE_TEXT[purpose]}  # first, then the data
    payload.update(c.data)
    if purpose is Purpose.WINBACK:
        payload["questions"] = list(CHURN_QUESTIONS)
    # Positional (a frozen dataclass takes keywords at a third more of its cost): client,
    # purpose, channel, first allowed moment, idempotency key, reason, payload.
    return NewAttempt(
        c.client_id, purpose, item.channel, item.not_before, c.key, c.reason, payload
    )


_PURPOSE_TEXT = {p: p.value for p in Purpose}  # an enum's value is a property: ~0.1 us a read
