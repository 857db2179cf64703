"""Set-based reads for the outreach planner over the history store's tables.

Implements ``povtor.ports.PlanningSource`` (who is due for a reorder reminder, an NPS survey,
a win-back check-in); the clients themselves come from the store (``ClientLookup``).
Everything is computed in SQL over keyset ranges of client ids; both SQLite and PostgreSQL run
the same window-function queries, with the date arithmetic written per dialect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.history.tables import ConsentRow
from povtor.db import UtcDateTime
from povtor.domain import Candidate, ChannelKind, ConsentChannel, ContactKind, Purpose
from povtor.ports import CandidatePage, PlanningRules

Consents = tuple[tuple[ConsentChannel, bool], ...]
Build = Callable[[Any, Consents, Consents], Candidate]


class SqlPlanningSource:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.dialect: str = sessions.kw["bind"].dialect.name

    # -- PlanningSource -------------------------------------------------------------------------

    def _days(self, later: str, earlier: str) -> str:
        """SQL for the days between two timestamps (fractional)."""
        if self.dialect == "postgresql":
            return f"(date_part('epoch', {later} - {earlier}) / 86400.0)"  # float8, not numeric
        return f"(julianday({later}) - julianday({earlier}))"

    def _as_of(self) -> str:
        return "CAST(:as_of AS TIMESTAMPTZ)" if self.dialect == "postgresql" else ":as_of"

    def _greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.dialect == "postgresql" else f"MAX({a}, {b})"

    async def _page_bounds(self, session: AsyncSession, after: int, limit: int) -> int | None:
        row = (
            await session.execute(
                text(
                    "SELECT MAX(id) FROM (SELECT id FROM clients WHERE id > :after "
                    "ORDER BY id LIMIT :limit) AS page"
                ),
                {"after": after, "limit": limit},
            )
        ).first()
        return None if row is None or row[0] is None else int(row[0])

    def _cycles_sql(self, group: str) -> str:
        """CTEs ending in ``cyc``: per (client, group) the median days between consecutive
        orders (ROW_NUMBER/COUNT over the gaps, one sort), the last order and the days since."""
        part = f"client_id{', ' + group if group else ''}"
        prev = f"LAG(placed_at) OVER (PARTITION BY {part} ORDER BY placed_at)"
        grp_sel = f", {group} AS grp" if group else ", '' AS grp"
        return f"""
        o AS (
            SELECT client_id{grp_sel}, placed_at,
                   {self._days("placed_at", prev)} AS gap
            FROM orders WHERE client_id > :after AND client_id <= :upto
        ),
        {self._stats_sql()},
        cyc AS (
            SELECT client_id, grp, last_at, orders,
                   CASE WHEN median_gap IS NULL THEN :fallback
                        ELSE {self._greatest("median_gap", ":min_cycle")} END AS cycle,
                   {self._days(self._as_of(), "last_at")} AS since
            FROM stats
        )"""

    def _stats_sql(self) -> str:
        """CTE ``stats`` over ``o``: last order, order count and median gap per group.

        PostgreSQL has the ordered-set aggregate (the window output is already grouped, so no
        second sort); elsewhere the median is the mean of the middle one or two gaps by
        ROW_NUMBER over COUNT.
        """
        if self.dialect == "postgresql":
            return """stats AS (
            SELECT client_id, grp, MAX(placed_at) AS last_at, COUNT(*) AS orders,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median_gap
            FROM o GROUP BY client_id, grp
        )"""
        return """ranked AS (
            SELECT client_id, grp, placed_at, gap,
                   ROW_NUMBER() OVER (
                       PARTITION BY client_id, grp ORDER BY gap IS NULL, gap) AS rn,
                   COUNT(gap) OVER (PARTITION BY client_id, grp) AS n
            FROM o
        ),
        stats AS (
            SELECT client_id, grp, MAX(placed_at) AS last_at, COUNT(*) AS orders,
                   AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN gap END) AS median_gap
            FROM ranked GROUP BY client_id, grp
        )"""

    _CLIENT_COLS = (
        "c.id AS client_id, c.external_id, c.timezone, c.preferred_channel, "
        "c.telegram_chat_id IS NOT NULL AS linked, c.telegram_reachable"
    )

    def reorder_sql(self) -> str:
        return f"""
        WITH {self._cycles_sql("COALESCE(category, '')")},
        due AS (
            SELECT cyc.*, ROW_NUMBER() OVER (
                PARTITION BY client_id ORDER BY (cycle - since), grp) AS pick
            FROM cyc
            WHERE since >= cycle - :lead AND since < cycle + :grace
        )
        SELECT {self._CLIENT_COLS}, due.grp, due.last_at, due.orders, due.cycle, due.since
        FROM due JOIN clients c ON c.id = due.client_id
        WHERE due.pick = 1 AND c.opted_out_at IS NULL AND c.id > :after AND c.id <= :upto
        ORDER BY c.id"""

    async def reorder_candidates(
        self, as_of: datetime, rules: PlanningRules, *, after_client_id: int, limit: int
    ) -> CandidatePage:
        sql = self.reorder_sql()
        params = {
            "lead": rules.reorder_lead_days,
            "grace": rules.reorder_grace_days,
            "fallback": float(rules.reorder_fallback_cycle_days),
            "min_cycle": float(rules.reorder_min_cycle_days),
        }

        def build(r: Any, consents: Consents, ads: Consents) -> Candidate:
            cycle = float(r.cycle)
            expected = r.last_at + timedelta(days=cycle)
            cat = r.grp or None
            reason = (
                f"reorder expected {expected.date().isoformat()}: cycle {cycle:.0f} d"
                + (" (median)" if r.orders > 1 else " (fallback, one order)")
                + (f", category {cat}" if cat else "")
                + f", last order {r.last_at.date().isoformat()}"
            )
            return self._candidate(
                r,
                consents,
                ads,
                Purpose.REORDER,
                due_at=expected - timedelta(days=rules.reorder_lead_days),
                reason=reason,
                key=f"reorder:{r.client_id}:{cat or '-'}:{r.last_at.date().isoformat()}",
                data={"category": cat, "cycle_days": round(cycle, 1), "expected": str(expected)},
            )

        return await self._page(sql, params, as_of, after_client_id, limit, build)

    def nps_sql(self) -> str:
        since_delivery = self._days(self._as_of(), "d.delivered")
        return f"""
        WITH d AS (
            SELECT client_id, MAX(delivered_at) AS delivered FROM orders
            WHERE client_id > :after AND client_id <= :upto AND delivered_at IS NOT NULL
            GROUP BY client_id
        ),
        a AS (
            SELECT client_id, MAX(answered_at) AS answered FROM nps_responses
            WHERE client_id > :after AND client_id <= :upto GROUP BY client_id
        ),
        s AS (
            SELECT client_id, MAX(at) AS surveyed FROM events
            WHERE client_id > :after AND client_id <= :upto
              AND kind IN ('call', 'message_out', 'note') AND {self._purpose("data")} = 'nps'
            GROUP BY client_id
        )
        SELECT {self._CLIENT_COLS}, d.delivered AS last_at
        FROM d JOIN clients c ON c.id = d.client_id LEFT JOIN a ON a.client_id = d.client_id
        LEFT JOIN s ON s.client_id = d.client_id
        WHERE c.opted_out_at IS NULL AND c.id > :after AND c.id <= :upto
          AND {since_delivery} >= :after_days AND {since_delivery} < :after_days + :grace
          AND (a.answered IS NULL OR {self._days(self._as_of(), "a.answered")} >= :window)
          AND (s.surveyed IS NULL OR {self._days(self._as_of(), "s.surveyed")} >= :window)
        ORDER BY c.id"""

    def _purpose(self, column: str) -> str:
        """The ``purpose`` key of a JSON column, as text."""
        if self.dialect == "postgresql":
            return f"({column} ->> 'purpose')"
        return f"json_extract({column}, '$.purpose')"

    async def nps_candidates(
        self, as_of: datetime, rules: PlanningRules, *, after_client_id: int, limit: int
    ) -> CandidatePage:
        sql = self.nps_sql()
        params = {
            "after_days": rules.nps_after_delivery_days,
            "grace": rules.nps_grace_days,
            "window": rules.nps_window_days,
        }

        def build(r: Any, consents: Consents, ads: Consents) -> Candidate:
            day = r.last_at.date().isoformat()
            return self._candidate(
                r,
                consents,
                ads,
                Purpose.NPS,
                due_at=r.last_at + timedelta(days=rules.nps_after_delivery_days),
                reason=f"NPS: order delivered {day}, no score in {rules.nps_window_days} d",
                key=f"nps:{r.client_id}:{day}",
                data={"delivered": str(r.last_at)},
            )

        return await self._page(sql, params, as_of, after_client_id, limit, build)

    def winback_sql(self) -> str:
        return f"""
        WITH {self._cycles_sql("")}
        SELECT {self._CLIENT_COLS}, cyc.last_at, cyc.orders, cyc.cycle, cyc.since
        FROM cyc JOIN clients c ON c.id = cyc.client_id
        WHERE c.opted_out_at IS NULL AND c.id > :after AND c.id <= :upto AND cyc.since >= :first
          AND cyc.since < :ceiling
          AND (cyc.orders = 1 OR cyc.since >= cyc.cycle * :factor)
        ORDER BY c.id"""

    async def winback_candidates(
        self, as_of: datetime, rules: PlanningRules, *, after_client_id: int, limit: int
    ) -> CandidatePage:
        thresholds = sorted(rules.winback_after_days)
        if not thresholds:
            return CandidatePage((), None)
        sql = self.winback_sql()
        params = {
            "first": thresholds[0],
            "ceiling": float(rules.winback_max_silence_days),
            "factor": rules.winback_overdue_factor,
            "fallback": float(rules.reorder_fallback_cycle_days),
            "min_cycle": float(rules.reorder_min_cycle_days),
        }

        def build(r: Any, consents: Consents, ads: Consents) -> Candidate:
            since = float(r.since)
            crossed = max(t for t in thresholds if t <= since)
            last = r.last_at.date().isoformat()
            return self._candidate(
                r,
                consents,
                ads,
                Purpose.WINBACK,
                due_at=r.last_at + timedelta(days=crossed),
                reason=f"win-back: no order for {since:.0f} d since {last} (check-in {crossed} d)",
                key=f"winback:{r.client_id}:{last}:{crossed}",
                data={"silence_days": int(since), "threshold_days": crossed},
            )

        return await self._page(sql, params, as_of, after_client_id, limit, build)

    # -- shared ---------------------------------------------------------------------------------

    async def _page(
        self,
        sql: str,
        params: dict[str, Any],
        as_of: datetime,
        after: int,
        limit: int,
        build: Build,
    ) -> CandidatePage:
        async with self._sessions() as session:
            if self.dialect == "postgresql":  # window sorts of a page stay in memory
                await session.execute(text("SET LOCAL work_mem = '64MB'"))
                await session.execute(text("SET LOCAL jit = off"))  # short queries: no gain
            upto = await self._page_bounds(session, after, limit)
            if upto is None:
                return CandidatePage((), None)
            stmt = (
                text(sql)
                .bindparams(bindparam("as_of", type_=UtcDateTime()))
                .columns(last_at=UtcDateTime())
            )
            rows = (
                await session.execute(
                    stmt, {**params, "as_of": as_of, "after": after, "upto": upto}
                )
            ).all()
            consents: dict[tuple[int, str], list[tuple[ConsentChannel, bool]]] = {}
            if rows:  # the page's consents by key range (no list of ids to send)
                for c in await session.execute(
                    select(
                        ConsentRow.client_id,
                        ConsentRow.channel,
                        ConsentRow.kind,
                        ConsentRow.granted,
                    ).where(ConsentRow.client_id > after, ConsentRow.client_id <= upto)
                ):
                    consents.setdefault((c.client_id, c.kind), []).append(
                        (ConsentChannel(c.channel), bool(c.granted))
                    )

        def of(client_id: int, kind: ContactKind) -> Consents:
            return tuple(consents.get((client_id, kind.value), ()))

        return CandidatePage(
            [
                build(
                    r,
                    of(r.client_id, ContactKind.SERVICE),
                    of(r.client_id, ContactKind.ADVERTISING),
                )
                for r in rows
            ],
            upto,
        )

    @staticmethod
    def _candidate(
        r: Any,
        consents: Consents,
        ads: Consents,
        purpose: Purpose,
        *,
        due_at: datetime,
        reason: str,
        key: str,
        data: dict[str, Any],
    ) -> Candidate:
        return Candidate(
            client_id=r.client_id,
            external_id=r.external_id,
            purpose=purpose,
            due_at=due_at,
            reason=reason,
            key=key,
            timezone=r.timezone,
            preferred_channel=ChannelKind(r.preferred_channel) if r.preferred_channel else None,
            telegram_linked=bool(r.linked),
            telegram_reachable=bool(r.telegram_reachable),
            consents=consents,
            opted_out=False,
            data=data,
            ad_consents=ads,
        )
