"""Prometheus metrics of the outreach engine, on a registry the runtime owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


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
