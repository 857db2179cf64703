"""Set-based reads for the outreach planner over the history store's tables.

Implements ``povtor.ports.PlanningSource`` (who is due for a reorder reminder, an NPS survey,
a win-back check-in); the clients themselves come from the store (``ClientLookup``).
Everything is computed in SQL over keyset ranges of client ids; both SQLite and PostgreSQL run
the same window-function queries, with the date arithmetic written per dialect.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.selectable import TextualSelect

from povtor.db import UtcDateTime
from povtor.domain import Candidate, ChannelKind, ConsentChannel, ContactKind, Purpose
from povtor.ports import CandidatePage, PlanningRules

Consents = tuple[tuple[ConsentChannel, bool], ...]
Build = Callable[[Any], Candidate]
_PREFERRED: dict[str | None, ChannelKind | None] = {
    None: None,
    "": None,
    **{c.value: c for c in ChannelKind},
}


def _grants(call: bool | None, telegram: bool | None) -> Consents:
    return tuple(
        (channel, bool(granted))
        for channel, granted in ((ConsentChannel.CALL, call), (ConsentChannel.TELEGRAM, telegram))
        if granted is not None
    )


# The consents of a candidate on the planner's channels, by (call, Telegram) column values (NULL:
# none recorded): nine combinations, each tuple built once (the query gives 1/0/NULL).
_GRANTS = {
    (call, telegram): _grants(call, telegram)
    for call in (None, True, False)
    for telegram in (None, True, False)
}


@lru_cache(maxsize=16)
def _row_type(columns: tuple[str, ...]) -> Any:
    """A named tuple type for a candidate query's columns (one per query, made once)."""
    return namedtuple("CandidateRow", columns)


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
        orders, the last order and the days since.

        ``group`` is a bare column (NULLs form one group, shown as ''), so an index on
        (client_id, group, placed_at) can feed the window in order; the gaps subtract per-row
        numbers (epoch seconds, Julian days) instead of building an interval per row."""
        part = f"client_id{', ' + group if group else ''}"
        if self.dialect == "postgresql":  # float8 seconds: no interval per row
            stamp, per_day = "date_part('epoch', placed_at)", " / 86400.0"
        else:
            stamp, per_day = "julianday(placed_at)", ""
        gap = f"({stamp} - LAG({stamp}) OVER (PARTITION BY {part} ORDER BY placed_at)){per_day}"
        grp_sel = f", {group} AS grp" if group else ""
        return f"""
        o AS (
            SELECT client_id{grp_sel}, placed_at,
                   {gap} AS gap
            FROM orders WHERE client_id > :after AND client_id <= :upto
        ),
        {self._stats_sql(bool(group))},
        cyc AS (
            SELECT client_id, {"COALESCE(grp, '')" if group else "''"} AS grp, last_at, orders,
                   CASE WHEN median_gap IS NULL THEN :fallback
                        ELSE {self._greatest("median_gap", ":min_cycle")} END AS cycle,
                   {self._days(self._as_of(), "last_at")} AS since
            FROM stats
        )"""

    def _stats_sql(self, grouped: bool) -> str:
        """CTE ``stats`` over ``o``: last order, order count and median gap per client, or per
        (client, group) when ``grouped``.

        PostgreSQL has the ordered-set aggregate (the window output is already grouped, so no
        second sort); elsewhere the median is the mean of the middle one or two gaps by
        ROW_NUMBER over COUNT. Ungrouped, the key is the client alone: a constant second key
        (``NULL AS grp``) cost PostgreSQL an extra sort of every order of the page.
        """
        key = "client_id, grp" if grouped else "client_id"
        if self.dialect == "postgresql":
            return f"""stats AS (
            SELECT {key}, MAX(placed_at) AS last_at, COUNT(*) AS orders,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median_gap
            FROM o GROUP BY {key}
        )"""
        return f"""ranked AS (
            SELECT {key}, placed_at, gap,
                   ROW_NUMBER() OVER (
                       PARTITION BY {key} ORDER BY gap IS NULL, gap) AS rn,
                   COUNT(gap) OVER (PARTITION BY {key}) AS n
            FROM o
        ),
        stats AS (
            SELECT {key}, MAX(placed_at) AS last_at, COUNT(*) AS orders,
                   AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN gap END) AS median_gap
            FROM ranked GROUP BY {key}
        )"""

    # Per channel the planner uses, the client's service and advertising consent: 1 granted,
    # 0 refused, NULL none recorded (the key is (client, channel, kind): one row at most).
    _GRANT_COLS = tuple((kind.value, ch.value) for kind in ContactKind for ch in ChannelKind)
    _CLIENT_COLS = (
        "c.id AS client_id, c.external_id, c.timezone, c.preferred_channel, "
        "c.telegram_chat_id IS NOT NULL AS linked, c.telegram_reachable, "
        + ", ".join(f"g.{kind}_{ch}" for kind, ch in _GRANT_COLS)
    )
    # The consents of the page's clients, one row per client, joined to the candidates: one
    # range scan of the consents per page, in the same query (it replaced a second query that
    # returned every consent row of the candidates, and a lookup per candidate for the grant).
    _GRANTS_JOIN = (
        " LEFT JOIN (SELECT client_id, "
        + ", ".join(
            f"MAX(CASE WHEN channel = '{ch}' AND kind = '{kind}' THEN"
            f" CASE WHEN granted THEN 1 ELSE 0 END END) AS {kind}_{ch}"
            for kind, ch in _GRANT_COLS
        )
        + " FROM consents WHERE client_id > :after AND client_id <= :upto GROUP BY client_id)"
        " AS g ON g.client_id = c.id"
    )

    @staticmethod
    def _ad_grant(rules: PlanningRules | None) -> str:
        """With ``require_ad_consent``, the client must have an advertising grant on a channel
        the planner uses; otherwise no advertising contact could be planned for them."""
        if rules is None or not rules.require_ad_consent:
            return ""
        kind = ContactKind.ADVERTISING.value
        return " AND (" + " OR ".join(f"g.{kind}_{ch.value} = 1" for ch in ChannelKind) + ")"

    def reorder_sql(self, rules: PlanningRules | None = None) -> str:
        return f"""
        WITH {self._cycles_sql("category")},
        due AS (
            SELECT cyc.*, ROW_NUMBER() OVER (
                PARTITION BY client_id ORDER BY (cycle - since), grp) AS pick
            FROM cyc
            WHERE since >= cycle - :lead AND since < cycle + :grace
        )
        SELECT {self._CLIENT_COLS}, due.grp, due.last_at, due.orders, due.cycle, due.since
        FROM due JOIN clients c ON c.id = due.client_id{self._GRANTS_JOIN}
        WHERE due.pick = 1 AND c.opted_out_at IS NULL AND c.id > :after AND c.id <= :upto
          {self._ad_grant(rules)}
        ORDER BY c.id"""

    async def reorder_candidates(
        self, as_of: datetime, rules: PlanningRules, *, after_client_id: int, limit: int
    ) -> CandidatePage:
        sql = self.reorder_sql(rules)
        params = {
            "lead": rules.reorder_lead_days,
            "grace": rules.reorder_grace_days,
            "fallback": float(rules.reorder_fallback_cycle_days),
            "min_cycle": float(rules.reorder_min_cycle_days),
        }

        def build(r: Any) -> Candidate:
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
        FROM d JOIN clients c ON c.id = d.client_id{self._GRANTS_JOIN}
        LEFT JOIN a ON a.client_id = d.client_id
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

        def build(r: Any) -> Candidate:
            day = r.last_at.date().isoformat()
            return self._candidate(
                r,
                Purpose.NPS,
                due_at=r.last_at + timedelta(days=rules.nps_after_delivery_days),
                reason=f"NPS: order delivered {day}, no score in {rules.nps_window_days} d",
                key=f"nps:{r.client_id}:{day}",
                data={"delivered": str(r.last_at)},
            )

        return await self._page(sql, params, as_of, after_client_id, limit, build)

    def winback_sql(self, rules: PlanningRules | None = None) -> str:
        return f"""
        WITH {self._cycles_sql("")}
        SELECT {self._CLIENT_COLS}, cyc.last_at, cyc.orders, cyc.cycle, cyc.since
        FROM cyc JOIN clients c ON c.id = cyc.client_id{self._GRANTS_JOIN}
        WHERE c.opted_out_at IS NULL AND c.id > :after AND c.id <= :upto AND cyc.since >= :first
          AND cyc.since < :ceiling
          AND (cyc.orders = 1 OR cyc.since >= cyc.cycle * :factor){self._ad_grant(rules)}
        ORDER BY c.id"""

    async def winback_candidates(
        self, as_of: datetime, rules: PlanningRules, *, after_client_id: int, limit: int
    ) -> CandidatePage:
        thresholds = sorted(rules.winback_after_days)
        if not thresholds:
            return CandidatePage((), None)
        sql = self.winback_sql(rules)
        params = {
            "first": thresholds[0],
            "ceiling": float(rules.winback_max_silence_days),
            "factor": rules.winback_overdue_factor,
            "fallback": float(rules.reorder_fallback_cycle_days),
            "min_cycle": float(rules.reorder_min_cycle_days),
        }

        def build(r: Any) -> Candidate:
            since = float(r.since)
            crossed = max(t for t in thresholds if t <= since)
            last = r.last_at.date().isoformat()
            return self._candidate(
                r,
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
            bound = text(sql).bindparams(bindparam("as_of", type_=UtcDateTime()))
            stmt: TextClause | TextualSelect = (
                bound  # asyncpg gives aware UTC datetimes already
                if self.dialect == "postgresql"
                else bound.columns(last_at=UtcDateTime())
            )
            result = await session.execute(
                stmt, {**params, "as_of": as_of, "after": after, "upto": upto}
            )
            # Plain named tuples: a field of SQLAlchemy's Row costs ~0.4 us by name, and each
            # candidate reads fifteen of them.
            row_type = _row_type(tuple(result.keys()))
            rows = [row_type._make(r) for r in result]
        return CandidatePage([build(r) for r in rows], upto)

    @staticmethod
    def _candidate(
        r: Any,
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
            preferred_channel=_PREFERRED[r.preferred_channel],
            telegram_linked=bool(r.linked),
            telegram_reachable=bool(r.telegram_reachable),
            consents=_GRANTS[r.service_call, r.service_telegram],
            opted_out=False,
            data=data,
            ad_consents=_GRANTS[r.advertising_call, r.advertising_telegram],
        )
