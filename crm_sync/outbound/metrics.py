"""Prometheus metrics of the CRM sync, on the worker's registry (``/metrics``)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge


class CrmMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self.pushed = Counter(
            "povtor_crm_pushed",
            "Timeline events pushed to the CRM",
            ["connector", "kind"],
            registry=registry,
        )
        self.failures = Counter(
            "povtor_crm_failures",
            "CRM pushes that failed (reason: refused, unavailable, auth, rate_limited)",
            ["connector", "reason"],
            registry=registry,
        )
        self.events = Gauge(
            "povtor_crm_events",
            "Events in the CRM push table by state",
            ["connector", "state"],
            registry=registry,
        )
        self.backlog = Gauge(
            "povtor_crm_backlog",
            "Timeline events not yet looked at by the CRM sync",
            ["connector"],
            registry=registry,
        )

    def states(self, connector: str, counts: Mapping[str, int], backlog: int) -> None:
        for state, n in counts.items():
            self.events.labels(connector, state).set(n)
        self.backlog.labels(connector).set(backlog)
