"""Prometheus metrics of the outreach engine, on a registry the runtime owns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from povtor.db import utcnow
from povtor.lifecycle import Periodic

if TYPE_CHECKING:
    from outreach.followups import Followups
    from outreach.listing import AttemptListing

log = logging.getLogger(__name__)


class OutreachMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self.claims = Counter(
            "povtor_attempt_claims", "Attempts claimed by this worker", registry=registry
        )
        self.outcomes = Counter(
            "povtor_attempt_outcomes",
            "Outcomes recorded by this worker",
            ["channel", "outcome", "state"],
            registry=registry,
        )
        self.messages_sent = Counter(
            "povtor_messages_sent", "Telegram messages delivered by outreach", registry=registry
        )
        self.in_progress = Gauge(
            "povtor_executions_in_progress",
            "Attempts being executed now (calls in progress for channel=call)",
            ["channel"],
            registry=registry,
        )
        self.attempts = Gauge(
            "povtor_attempts", "Attempts in the queue by state", ["state"], registry=registry
        )
        self.queue_lag = Gauge(
            "povtor_queue_lag_seconds",
            "Age of the oldest due attempt not yet claimed",
            registry=registry,
        )
        self.followup_lag = Gauge(
            "povtor_followup_lag_seconds",
            "Age of the oldest outcome not yet in the timeline",
            registry=registry,
        )
        self.planned = Counter(
            "povtor_attempts_planned",
            "Attempts created by the planner",
            ["purpose"],
            registry=registry,
        )


class QueueGauges:
    """Refreshes the queue gauges (attempts by state, lags) from the database."""

    name = "queue-gauges"

    def __init__(
        self,
        metrics: OutreachMetrics,
        listing: AttemptListing,
        followups: Followups,
        *,
        clock: Callable[[], datetime] = utcnow,
        interval_s: float = 15.0,
    ) -> None:
        self.metrics = metrics
        self.listing = listing
        self.followups = followups
        self.clock = clock
        self.interval_s = interval_s

    async def refresh(self) -> None:
        now = self.clock()
        for state, count in (await self.listing.count_by_state()).items():
            self.metrics.attempts.labels(state.value).set(count)
        oldest = await self.listing.oldest_due(now)
        self.metrics.queue_lag.set(0.0 if oldest is None else (now - oldest).total_seconds())
        self.metrics.followup_lag.set(await self.followups.lag_seconds(now))

    async def run(self, stop: asyncio.Event) -> None:
        await Periodic("refreshing queue metrics", self.refresh, self.interval_s).run(stop)
