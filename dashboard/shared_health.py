"""The worker's health in the dashboard's table ``dashboard_health``: the worker publishes its
components there (the :class:`povtor.ports.HealthFeed` port) and every process serving the
dashboard reads them, so the overview shows the same trouble whichever process serves it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashboard.tables import DashboardHealthRow
from povtor.health import ComponentHealth, HealthState

_health = DashboardHealthRow.__table__.c


class SqlHealthFeed:
    """One worker's components (``source``: its id; several workers may share a database)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], source: str) -> None:
        self._sessions = sessions
        self._source = source

    async def publish(self, components: Sequence[ComponentHealth]) -> None:
        rows = [
            {
                "source": self._source,
                "name": c.name,
                "state": c.state.value,
                "reason": c.reason,
                "since": c.since,
            }
            for c in components
        ]
        async with self._sessions.begin() as session:
            await session.execute(delete(DashboardHealthRow).where(_health.source == self._source))
            if rows:
                await session.execute(insert(DashboardHealthRow), rows)

    async def problems(self) -> Sequence[ComponentHealth]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(_health.name, _health.state, _health.reason, _health.since)
                .where(_health.source == self._source, _health.state != HealthState.OK.value)
                .order_by(_health.name)
            )
            return [ComponentHealth(r.name, HealthState(r.state), r.reason, r.since) for r in rows]
