"""Login throttling: after repeated failures a login (and an address) is locked for a while.

The counts live in the dashboard's table ``dashboard_login_failures``, so every process serving
the dashboard (``POVTOR_DASHBOARD_PROCESSES``) sees the same failures: an attacker spreading
guesses over the processes meets one lockout, as with one process.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashboard.tables import DashboardLoginFailureRow
from povtor.db import dialect_insert, utcnow

MAX_LOCKOUT_S = 3600.0
_FORGET_AFTER = timedelta(seconds=MAX_LOCKOUT_S)
_failures = DashboardLoginFailureRow.__table__.c


class LoginThrottle:
    """Counts failures per key ("login:anna", "ip:10.0.0.7"); a success clears the login's count.

    After ``max_failures`` failures the key is locked for ``lockout_s``, doubling with every
    further failure (up to an hour). Failures older than an hour without a new one are forgotten
    (their rows deleted with the next failure anywhere).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        max_failures: int,
        lockout_s: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._max = max_failures
        self._lockout = lockout_s
        self._clock = clock

    async def retry_after(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0 = now)."""
        now = self._clock()
        async with self._sessions() as session:
            locks = await session.scalars(
                select(_failures.locked_until).where(
                    _failures.key.in_(keys), _failures.locked_until > now
                )
            )
            waits: list[float] = [(until - now).total_seconds() for until in locks]
        return max([0.0, *waits])

    async def failed(self, *keys: str) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            await session.execute(
                delete(DashboardLoginFailureRow).where(
                    _failures.last_failure < now - _FORGET_AFTER
                )
            )
            for key in keys:
                # one atomic count per failure, whichever process saw it
                insert = dialect_insert(session, DashboardLoginFailureRow).values(
                    key=key, failures=1, last_failure=now, locked_until=None
                )
                upsert = insert.on_conflict_do_update(
                    index_elements=[_failures.key],
                    set_={"failures": _failures.failures + 1, "last_failure": now},
                ).returning(_failures.failures)
                over = (await session.execute(upsert)).scalar_one() - self._max
                if over < 0:
                    continue
                until = now + timedelta(seconds=min(self._lockout * 2**over, MAX_LOCKOUT_S))
                await session.execute(
                    update(DashboardLoginFailureRow)
                    .where(
                        _failures.key == key,
                        or_(_failures.locked_until.is_(None), _failures.locked_until < until),
                    )
                    .values(locked_until=until)
                )

    async def succeeded(self, key: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(DashboardLoginFailureRow).where(_failures.key == key))
