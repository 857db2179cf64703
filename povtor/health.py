"""The worker's health as operators see it: named components, each with a state and a reason.

Adapters report through :class:`HealthReporter` (a SIP trunk that stopped answering, a
registration that failed, a dashboard whose port is taken); the composition root owns one
:class:`HealthBoard` and shows it on ``/healthz`` and the dashboard overview. A change of state
is logged once, as a warning when something goes wrong and at INFO when it recovers, so a trunk
that stays down does not fill the log with one line per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from povtor.domain import ChannelKind

log = logging.getLogger("povtor.health")


class HealthState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # works in part (a trunk of several down, registration retrying)
    DOWN = "down"  # does not work at all; the reason says what to do


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    name: str
    state: HealthState
    reason: str = ""
    since: datetime | None = None  # when the state last changed


class HealthReporter(Protocol):
    """What an adapter needs to report its health (a HealthBoard, or a test's recorder)."""

    def report(self, name: str, state: HealthState, reason: str = "") -> None: ...


class HealthBoard:
    """Every component's last reported state; a component not reported yet is not listed."""

    def __init__(self) -> None:
        self._components: dict[str, ComponentHealth] = {}
        self._listeners: list[Callable[[ComponentHealth], None]] = []
        self._watchers: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[ComponentHealth], None]) -> None:
        """Called with the new entry whenever a component's state changes."""
        self._listeners.append(listener)

    def on_update(self, watcher: Callable[[], None]) -> None:
        """Called whenever a component's state or reason changes (to publish the board)."""
        self._watchers.append(watcher)

    def unavailable(self, channel: ChannelKind) -> str | None:
        """Why a channel cannot carry attempts now (its component is DOWN), or None: the
        dispatcher holds its attempts back instead of spending them."""
        component = self._components.get(channel.value)
        if component is None or component.state is not HealthState.DOWN:
            return None
        return component.reason or component.state.value

    def report(self, name: str, state: HealthState, reason: str = "") -> None:
        old = self._components.get(name)
        if old is not None and old.state is state and old.reason == reason:
            return
        self._components[name] = ComponentHealth(name, state, reason, datetime.now(UTC))
        if old is None or old.state is not state:
            for listener in self._listeners:
                listener(self._components[name])
        for watcher in self._watchers:
            watcher()
        if state is HealthState.OK:
            if old is not None and old.state is not HealthState.OK:
                log.info("%s recovered", name)
        else:  # reasons are kept free of counters, so a repeat of the same trouble is silent
            log.warning("%s %s: %s", name, state.value, reason)

    def ok(self, name: str) -> None:
        self.report(name, HealthState.OK)

    @property
    def components(self) -> Mapping[str, ComponentHealth]:
        return dict(self._components)

    @property
    def state(self) -> HealthState:
        """The worst state of all components (OK when nothing reported trouble)."""
        states = {c.state for c in self._components.values()}
        if HealthState.DOWN in states:
            return HealthState.DOWN
        if HealthState.DEGRADED in states:
            return HealthState.DEGRADED
        return HealthState.OK

    def problems(self) -> list[ComponentHealth]:
        return [c for c in self._components.values() if c.state is not HealthState.OK]

    def as_json(self) -> dict[str, dict[str, str]]:
        return {
            c.name: {"state": c.state.value, "reason": c.reason}
            for c in sorted(self._components.values(), key=lambda c: c.name)
        }
