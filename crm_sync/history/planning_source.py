"""Set-based reads for the outreach planner over the history store's tables.

Implements ``povtor.ports.PlanningSource`` (who is due for a reorder reminder, an NPS survey,
a win-back check-in); the clients themselves come from the store (``ClientLookup``).
Everything is read over keyset ranges of client ids, all purposes of a range together. On
PostgreSQL a range's orders are read once, sorted, as three arrays, and the order cycles of reorder
and win-back are computed from them in NumPy (``order_cycles``: the same floats the window
functions gave); SQLite runs window-function queries per purpose. NPS is one SQL query on both.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import namedtuple
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.selectable import TextualSelect

from crm_sync.history import order_cycles
from povtor.db import UtcDateTime
from povtor.domain import Candidate, ChannelKind, ConsentChannel, ContactKind, Purpose
from povtor.errors import StoreError
from povtor.ports import DuePage, PlanningRules

Consents = tuple[tuple[ConsentChannel, bool], ...]
Found = dict[Purpose, list[Candidate]]
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


# The orders of a page, read once for every purpose, as four arrays in PostgreSQL's binary form
# (a sorted subquery feeds array_agg in its order): client ids, category codes (1-based
# positions in the categories, listed in the database's order, NULL first), the times of the
# orders and of their deliveries (-infinity: not delivered) for the NPS survey, as stored
# (microseconds since 2000; ``order_cycles.epoch_seconds`` makes them ``date_part('epoch', t)``,
# the same floats, in NumPy: a third less of the query's CPU than date_part per order here).
# Codes instead of texts, binary instead of decoded lists: no Python object per order. Sorted by
# client and time, the order of the index on orders (client_id, placed_at), so PostgreSQL reads
# them in order without sorting them; order_cycles groups them by category (a third less of the
# query's time per page than sorting by client, category and time here).
_ARRAYS = """
WITH k AS ({categories})
SELECT k.categories, o.client, o.code, o.placed, o.delivered, o.unknown
FROM k, LATERAL (
    SELECT array_send(array_agg(client_id)) AS client, array_send(array_agg(code)) AS code,
           array_send(array_agg(placed_at)) AS placed,
           array_send(array_agg(delivered)) AS delivered, bool_or(code IS NULL) AS unknown
    FROM (SELECT client_id, array_position(k.categories, category) AS code, placed_at,
                 COALESCE(delivered_at, '-infinity') AS delivered
          FROM orders WHERE client_id > :after AND client_id <= :upto
          ORDER BY client_id, placed_at) AS s
) AS o"""
# The categories: the page's own (a second scan of its orders), with those of ``:known`` (a
# text array, possibly empty).
ORDERS_ARRAYS_SQL = _ARRAYS.format(
    categories="""
    SELECT array_agg(category ORDER BY category NULLS FIRST) AS categories
    FROM (SELECT category FROM orders WHERE client_id > :after AND client_id <= :upto
          UNION SELECT unnest(CAST(:known AS TEXT[]))) AS d"""
)
# The categories of earlier pages, in the database's order, as they were: no second scan; when
# the page has another (``unknown``: an order without a code), it is read again with the one
# above.
KNOWN_ARRAYS_SQL = _ARRAYS.format(categories="SELECT CAST(:known AS TEXT[]) AS categories")
# A page's reads run in a transaction with these settings, made in one round trip (SET LOCAL
# each). Work memory: a page's arrays stay in memory. No JIT: short queries, no gain. No bitmap
# scans: the page's orders come in the index's order, unsorted; on a smaller table PostgreSQL
# estimated a bitmap scan and a sort cheaper, which took half as much CPU again (100k clients;
# at 1M clients it picks the index by itself).
PAGE_SETTINGS = text(
    "SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true),"
    " set_config('enable_bitmapscan', 'off', true)"
)
KNOWN_CATEGORIES_MAX = 64  # more: array_position's linear search per order would cost more


def binary_array(data: bytes, element: str) -> npt.NDArray[Any]:
    """A one-dimensional PostgreSQL array without NULLs from its binary form (``array_send``):
    a 20-byte header, then per element its length (4 bytes) and value, big-endian."""
    if int.from_bytes(data[:4], "big") != 1:
        raise StoreError("expected a one-dimensional array")
    cells = np.frombuffer(
        data, dtype=np.dtype([("size", ">i4"), ("value", ">" + element)]), offset=20
    )
    return cells["value"].astype("<" + element)


@dataclass(frozen=True, slots=True)
class _PageRead:
    """One page being read: its session, the pass's moment and rules, the id range."""

    session: AsyncSession
    as_of: datetime
    rules: PlanningRules
    after: int
    upto: int


class SqlPlanningSource:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.dialect: str = sessions.kw["bind"].dialect.name
        # PostgreSQL: the order categories of the pages read so far, in the database's order
        # (a page that has no other needs no scan for its own); empty: none known yet; None:
        # more than KNOWN_CATEGORIES_MAX, every page scans for its own.
        self._categories: list[str | None] | None = []

    # -- PlanningSource -------------------------------------------------------------------------

    async def due(
        self,
        as_of: datetime,
        rules: PlanningRules,
        purposes: Collection[Purpose],
        *,
        after_client_id: int,
        limit: int,
        upto: int | None = None,
    ) -> DuePage:
        found: Found = {p: [] for p in Purpose if p in purposes}
        cycles = found.keys() & {Purpose.REORDER, Purpose.WINBACK}
        try:
            if upto is None:
                upto = await self.page_end(after_client_id=after_client_id, limit=limit)
            if upto is None:
                return DuePage(found, None)

            async def read(part: Callable[[_PageRead], Awaitable[Found]]) -> Found:
                async with self._sessions() as session:
                    if self.dialect == "postgresql":
                        await session.execute(PAGE_SETTINGS)
                    return await part(_PageRead(session, as_of, rules, after_client_id, upto))

            async def nps(page: _PageRead) -> Found:
                return {Purpose.NPS: await self._nps(page)}

            async def by_cycles(page: _PageRead) -> Found:
                return await self._cycles_in_sql(page, cycles)

            async def from_arrays(page: _PageRead) -> Found:
                return await self._from_arrays(page, found.keys())

            # One connection for a page: the planner reads the next pages while it plans
            # this one, and that keeps the database busy.
            if self.dialect == "postgresql":
                parts = [from_arrays]
            else:
                parts = ([nps] if Purpose.NPS in found else []) + ([by_cycles] if cycles else [])
            for part in parts:
                found.update(await read(part))
        except SQLAlchemyError as err:
            raise StoreError(f"cannot read the history for planning: {err}") from err
        return DuePage(found, upto)

    async def page_end(self, *, after_client_id: int, limit: int) -> int | None:
        try:
            async with self._sessions() as session:
                return await self._page_bounds(session, after_client_id, limit)
        except SQLAlchemyError as err:
            raise StoreError(f"cannot read the history for planning: {err}") from err

    # -- SQL pieces -----------------------------------------------------------------------------

    def _days(self, later: str, earlier: str) -> str:
        """SQL for the days between two timestamps (fractional)."""
        if self.dialect == "postgresql":
            return f"(date_part('epoch', {later} - {earlier}) / 86400.0)"  # float8, not numeric
        return f"(julianday({later}) - julianday({earlier}))"

    def _as_of(self) -> str:
        return "CAST(:as_of AS TIMESTAMPTZ)" if self.dialect == "postgresql" else ":as_of"

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

    @staticmethod
    def _cycles_sql(group: str) -> str:
        """SQLite CTEs ending in ``cyc``: per (client, group) the median days between
        consecutive orders, the last order and the days since.

        ``group`` is a bare column (NULLs form one group, shown as ''); the gaps subtract
        Julian days per row. The median is the mean of the middle one or two gaps by
        ROW_NUMBER over COUNT."""
        part = f"client_id{', ' + group if group else ''}"
        gap = (
            f"(julianday(placed_at) - LAG(julianday(placed_at)) OVER "
            f"(PARTITION BY {part} ORDER BY placed_at))"
        )
        grp_sel = f", {group} AS grp" if group else ""
        key = "client_id, grp" if group else "client_id"
        return f"""
        o AS (
            SELECT client_id{grp_sel}, placed_at, {gap} AS gap
            FROM orders WHERE client_id > :after AND client_id <= :upto
        ),
        ranked AS (
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
        ),
        cyc AS (
            SELECT client_id, {"COALESCE(grp, '')" if group else "''"} AS grp, last_at, orders,
                   CASE WHEN median_gap IS NULL THEN :fallback
                        ELSE MAX(median_gap, :min_cycle) END AS cycle,
                   (julianday(:as_of) - julianday(last_at)) AS since
            FROM stats
        )"""

    # Per channel the planner uses, the client's service and advertising consent: 1 granted,
    # 0 refused, NULL none recorded (the key is (client, channel, kind): one row at most).
    _GRANT_COLS = tuple((kind.value, ch.value) for kind in ContactKind for ch in ChannelKind)
    _CLIENT_COLS = (
        "c.id AS client_id, c.external_id, c.timezone, c.preferred_channel, "
        "c.telegram_chat_id IS NOT NULL AS linked, c.telegram_reachable, "
        + ", ".join(f"g.{kind}_{ch}" for kind, ch in _GRANT_COLS)
    )
    _GRANTS = ", ".join(
        f"MAX(CASE WHEN channel = '{ch}' AND kind = '{kind}' THEN"
        f" CASE WHEN granted THEN 1 ELSE 0 END END) AS {kind}_{ch}"
        for kind, ch in _GRANT_COLS
    )

    def _per_client(self, name: str, columns: str, table: str, key: str, where: str = "") -> str:
        """A left join of one row of aggregates of ``table`` per client (NULLs for none).

        PostgreSQL: a lateral subquery per joined client, an index range each. A join to the
        aggregates of the whole page's range (what SQLite runs) was estimated at a few rows
        at 1M clients, and PostgreSQL chose a nested loop over it: 16 s for the candidates of
        one page instead of milliseconds."""
        if self.dialect == "postgresql":
            return (
                f" LEFT JOIN LATERAL (SELECT {columns} FROM {table}"
                f" WHERE client_id = {key}{where}) AS {name} ON true"
            )
        return (
            f" LEFT JOIN (SELECT client_id, {columns} FROM {table}"
            f" WHERE client_id > :after AND client_id <= :upto{where} GROUP BY client_id)"
            f" AS {name} ON {name}.client_id = {key}"
        )

    def _grants_join(self) -> str:
        """The client's consents on the planner's channels as one row (``_GRANT_COLS``)."""
        return self._per_client("g", self._GRANTS, "consents", "c.id")

    @staticmethod
    def _ad_grant(rules: PlanningRules | None) -> str:
        """With ``require_ad_consent``, the client must have an advertising grant on a channel
        the planner uses; otherwise no advertising contact could be planned for them."""
        if rules is None or not rules.require_ad_consent:
            return ""
        kind = ContactKind.ADVERTISING.value
        return " AND (" + " OR ".join(f"g.{kind}_{ch.value} = 1" for ch in ChannelKind) + ")"

    def reorder_sql(self, rules: PlanningRules | None = None) -> str:
        """SQLite: per client the category due soonest, with the client's columns."""
        return f"""
        WITH {self._cycles_sql("category")},
        due AS (
            SELECT cyc.*, ROW_NUMBER() OVER (
                PARTITION BY client_id ORDER BY (cycle - since), grp) AS pick
            FROM cyc
            WHERE since >= cycle - :lead AND since < cycle + :grace
        )
        SELECT {self._CLIENT_COLS}, due.grp, due.last_at, due.orders, due.cycle, due.since
        FROM due JOIN clients c ON c.id = due.client_id{self._grants_join()}
        WHERE due.pick = 1 AND c.opted_out_at IS NULL AND c.id > :after AND c.id <= :upto
          {self._ad_grant(rules)}
        ORDER BY c.id"""

    def winback_sql(self, rules: PlanningRules | None = None) -> str:
        """SQLite: the clients silent long enough, with the client's columns."""
        return f"""
        WITH {self._cycles_sql("")}
        SELECT {self._CLIENT_COLS}, cyc.last_at, cyc.orders, cyc.cycle, cyc.since
        FROM cyc JOIN clients c ON c.id = cyc.client_id{self._grants_join()}
        WHERE c.opted_out_at IS NULL AND c.id > :after AND c.id <= :upto AND cyc.since >= :first
          AND cyc.since < :ceiling
          AND (cyc.orders = 1 OR cyc.since >= cyc.cycle * :factor){self._ad_grant(rules)}
        ORDER BY c.id"""

    def clients_sql(self, rules: PlanningRules | None = None) -> str:
        """PostgreSQL: the columns of the clients among ``:ids`` an advertising contact may
        reach (not opted out; with ``require_ad_consent``, an advertising grant)."""
        return f"""
        SELECT {self._CLIENT_COLS}
        FROM clients c{self._grants_join()}
        WHERE c.id = ANY(CAST(:ids AS BIGINT[])) AND c.opted_out_at IS NULL
          AND c.id > :after AND c.id <= :upto{self._ad_grant(rules)}
        ORDER BY c.id"""

    def _not_asked(self, key: str) -> tuple[str, str]:
        """The joins and the condition of NPS: no score and no survey within ``:window``
        days of the pass's moment (``key``: the client's id column)."""
        surveys = (
            f" AND kind IN ('call', 'message_out', 'note') AND {self._purpose('data')} = 'nps'"
        )
        joins = self._per_client(
            "a", "MAX(answered_at) AS answered", "nps_responses", key
        ) + self._per_client("s", "MAX(at) AS surveyed", "events", key, surveys)
        where = (
            f"(a.answered IS NULL OR {self._days(self._as_of(), 'a.answered')} >= :window)"
            f" AND (s.surveyed IS NULL OR {self._days(self._as_of(), 's.surveyed')} >= :window)"
        )
        return joins, where

    def nps_sql(self) -> str:
        """SQLite: the clients whose last delivery is in the survey's days, not asked lately."""
        since_delivery = self._days(self._as_of(), "d.delivered")
        joins, not_asked = self._not_asked("d.client_id")
        return f"""
        WITH d AS (
            SELECT client_id, MAX(delivered_at) AS delivered FROM orders
            WHERE client_id > :after AND client_id <= :upto AND delivered_at IS NOT NULL
            GROUP BY client_id
        )
        SELECT {self._CLIENT_COLS}, d.delivered AS last_at
        FROM d JOIN clients c ON c.id = d.client_id{self._grants_join()}{joins}
        WHERE c.opted_out_at IS NULL AND c.id > :after AND c.id <= :upto
          AND {since_delivery} >= :after_days AND {since_delivery} < :after_days + :grace
          AND {not_asked}
        ORDER BY c.id"""

    def nps_clients_sql(self) -> str:
        """PostgreSQL: the columns of the clients among ``:ids`` (their last delivery in the
        survey's days) not opted out and not asked lately."""
        joins, not_asked = self._not_asked("c.id")
        return f"""
        SELECT {self._CLIENT_COLS}
        FROM clients c{self._grants_join()}{joins}
        WHERE c.id = ANY(CAST(:ids AS BIGINT[])) AND c.opted_out_at IS NULL
          AND c.id > :after AND c.id <= :upto AND {not_asked}
        ORDER BY c.id"""

    def _purpose(self, column: str) -> str:
        """The ``purpose`` key of a JSON column, as text."""
        if self.dialect == "postgresql":
            return f"({column} ->> 'purpose')"
        return f"json_extract({column}, '$.purpose')"

    async def _rows(self, page: _PageRead, sql: str, params: dict[str, Any]) -> list[Any]:
        bound = text(sql)
        if ":as_of" in sql:
            bound = bound.bindparams(bindparam("as_of", type_=UtcDateTime()))
        stmt: TextClause | TextualSelect = (
            bound  # asyncpg gives aware UTC datetimes already
            if self.dialect == "postgresql"
            else bound.columns(last_at=UtcDateTime())
        )
        result = await page.session.execute(
            stmt, {**params, "as_of": page.as_of, "after": page.after, "upto": page.upto}
        )
        # Plain named tuples: a field of SQLAlchemy's Row costs ~0.4 us by name, and each
        # candidate reads fifteen of them.
        row_type = _row_type(tuple(result.keys()))
        return [row_type._make(r) for r in result]

    # -- the purposes ---------------------------------------------------------------------------

    async def _nps(self, page: _PageRead) -> list[Candidate]:
        rules = page.rules
        params = {
            "after_days": rules.nps_after_delivery_days,
            "grace": rules.nps_grace_days,
            "window": rules.nps_window_days,
        }
        rows = await self._rows(page, self.nps_sql(), params)
        return [_nps(r, rules, r.last_at) for r in rows]

    @staticmethod
    def _cycle_params(rules: PlanningRules) -> dict[str, Any]:
        return {
            "fallback": float(rules.reorder_fallback_cycle_days),
            "min_cycle": float(rules.reorder_min_cycle_days),
        }

    async def _cycles_in_sql(self, page: _PageRead, purposes: Collection[Purpose]) -> Found:
        """SQLite: a window-function query per purpose."""
        rules = page.rules
        found: Found = {}
        cycle = self._cycle_params(rules)
        if Purpose.REORDER in purposes:
            params: dict[str, Any] = {
                "lead": rules.reorder_lead_days,
                "grace": rules.reorder_grace_days,
            }
            rows = await self._rows(page, self.reorder_sql(rules), {**params, **cycle})
            found[Purpose.REORDER] = [
                _reorder(r, rules, r.grp, r.last_at, r.orders, float(r.cycle)) for r in rows
            ]
        thresholds = sorted(rules.winback_after_days)
        if Purpose.WINBACK in purposes and thresholds:
            params = {
                "first": thresholds[0],
                "ceiling": float(rules.winback_max_silence_days),
                "factor": rules.winback_overdue_factor,
            }
            rows = await self._rows(page, self.winback_sql(rules), {**params, **cycle})
            found[Purpose.WINBACK] = [
                _winback(r, thresholds, r.last_at, float(r.since)) for r in rows
            ]
        return found

    async def _from_arrays(self, page: _PageRead, purposes: Collection[Purpose]) -> Found:
        """PostgreSQL: the page's orders once; the cycles of reorder and win-back and the last
        delivery of NPS in NumPy; then the columns of the clients found."""
        rules, as_of = page.rules, page.as_of
        got = await self._orders_arrays(page.session, page.after, page.upto)
        if got.client is None:  # no orders in the page
            return {}
        # NumPy releases the GIL for most of this: another thread, while the loop plans on
        due = await asyncio.to_thread(_due_in_arrays, got, as_of, rules, purposes)
        ids = sorted({r[0] for r in due.reorder} | {w[0] for w in due.winback})
        rows = await self._rows(page, self.clients_sql(rules), {"ids": ids}) if ids else []
        nps_rows = await self._nps_rows(page, due.nps) if Purpose.NPS in purposes else []
        return _candidates_of(due, rows, nps_rows, rules, purposes)

    async def _orders_arrays(self, session: AsyncSession, after: int, upto: int) -> Any:
        """``ORDERS_ARRAYS_SQL``'s row for a page; with the categories of earlier pages when
        they are all the page has (no second scan of its orders)."""
        known = self._categories or []
        bounds = {"after": after, "upto": upto, "known": known}
        if known:
            got = (await session.execute(text(KNOWN_ARRAYS_SQL), bounds)).one()
            if not got.unknown:
                return got
        got = (await session.execute(text(ORDERS_ARRAYS_SQL), bounds)).one()
        if self._categories is not None and got.categories is not None:
            many = len(got.categories) > KNOWN_CATEGORIES_MAX
            self._categories = None if many else list(got.categories)
        return got

    async def _nps_rows(self, page: _PageRead, due: NpsDue) -> list[Any]:
        """PostgreSQL: the client rows of the NPS candidates among the clients whose last
        delivery is in the survey's days (``due``), those not scored or surveyed within the
        window."""
        if not due:
            return []
        params = {"ids": [client for client, _ in due], "window": page.rules.nps_window_days}
        return await self._rows(page, self.nps_clients_sql(), params)


ReorderDue = list[tuple[int, str, int, int, float]]  # client, category, last (us), orders, cycle
WinbackDue = list[tuple[int, int, float]]  # client, last order (us), days since
NpsDue = list[tuple[int, int]]  # client, last delivery (us)


@dataclass(frozen=True, slots=True)
class _ArraysDue:
    reorder: ReorderDue
    winback: WinbackDue
    nps: NpsDue


def _due_in_arrays(
    got: Any, as_of: datetime, rules: PlanningRules, purposes: Collection[Purpose]
) -> _ArraysDue:
    """The reorder, win-back and NPS occasions of a page from ``ORDERS_ARRAYS_SQL``'s arrays
    (NPS: the clients whose last delivery is in the survey's days; the answers and surveys are
    the database's to check)."""
    client = binary_array(got.client, "i8")
    epoch_s = order_cycles.epoch_seconds(binary_array(got.placed, "i8"))
    cycle = SqlPlanningSource._cycle_params(rules)
    reorder: ReorderDue = []
    winback: WinbackDue = []
    if Purpose.REORDER in purposes:
        code = binary_array(got.code, "i4")
        by_cat = order_cycles.by_category(client, code, epoch_s, as_of, **cycle)
        g = order_cycles.soonest_due(
            by_cat, lead=rules.reorder_lead_days, grace=rules.reorder_grace_days
        )
        categories = [got.categories[c - 1] or "" for c in code[by_cat.first[g]].tolist()]
        reorder = list(
            zip(
                by_cat.client[g].tolist(),
                categories,
                by_cat.last_us[g].tolist(),
                by_cat.orders[g].tolist(),
                by_cat.cycle[g].tolist(),
                strict=True,
            )
        )
    thresholds = sorted(rules.winback_after_days)
    if Purpose.WINBACK in purposes and thresholds:
        by_client = order_cycles.by_client(client, epoch_s, as_of, **cycle)
        i = order_cycles.silent(
            by_client,
            first=thresholds[0],
            ceiling=float(rules.winback_max_silence_days),
            factor=rules.winback_overdue_factor,
        )
        winback = list(
            zip(
                by_client.client[i].tolist(),
                by_client.last_us[i].tolist(),
                by_client.since[i].tolist(),
                strict=True,
            )
        )
    nps: NpsDue = []
    if Purpose.NPS in purposes:
        delivered_s = order_cycles.epoch_seconds(binary_array(got.delivered, "i8"))
        delivered = order_cycles.latest(client, delivered_s)
        since = order_cycles.days_since(as_of, delivered.last_us)
        after = rules.nps_after_delivery_days
        i = np.flatnonzero((since >= after) & (since < after + rules.nps_grace_days))
        nps = list(zip(delivered.client[i].tolist(), delivered.last_us[i].tolist(), strict=True))
    return _ArraysDue(reorder, winback, nps)


def _candidates_of(
    due: _ArraysDue,
    rows: list[Any],
    nps_rows: list[Any],
    rules: PlanningRules,
    purposes: Collection[Purpose],
) -> Found:
    """The candidates of a page from its occasions (``_due_in_arrays``) and the rows of the
    clients who may be contacted for them (``rows``: reorder and win-back; ``nps_rows``)."""
    found: Found = {}
    last_at = order_cycles.last_at
    if Purpose.NPS in purposes:
        delivered = dict(due.nps)
        found[Purpose.NPS] = [_nps(r, rules, last_at(delivered[r.client_id])) for r in nps_rows]
    reachable = {r.client_id: r for r in rows}
    if Purpose.REORDER in purposes:
        found[Purpose.REORDER] = [
            _reorder(r, rules, grp, last_at(us), orders, cyc)
            for client_id, grp, us, orders, cyc in due.reorder
            if (r := reachable.get(client_id)) is not None
        ]
    if Purpose.WINBACK in purposes:
        thresholds = sorted(rules.winback_after_days)
        found[Purpose.WINBACK] = [
            _winback(r, thresholds, last_at(us), since)
            for client_id, us, since in due.winback
            if (r := reachable.get(client_id)) is not None
        ]
    return found


def _reorder(
    r: Any, rules: PlanningRules, grp: str, last_at: datetime, orders: int, cycle: float
) -> Candidate:
    expected = last_at + timedelta(days=cycle)
    cat = grp or None
    reason = (
        f"reorder expected {expected.date().isoformat()}: cycle {cycle:.0f} d"
        + (" (median)" if orders > 1 else " (fallback, one order)")
        + (f", category {cat}" if cat else "")
        + f", last order {last_at.date().isoformat()}"
    )
    return _candidate(
        r,
        Purpose.REORDER,
        due_at=expected - timedelta(days=rules.reorder_lead_days),
        reason=reason,
        key=f"reorder:{r.client_id}:{cat or '-'}:{last_at.date().isoformat()}",
        data={"category": cat, "cycle_days": round(cycle, 1), "expected": str(expected)},
    )


def _winback(r: Any, thresholds: list[int], last_at: datetime, since: float) -> Candidate:
    crossed = thresholds[bisect_right(thresholds, since) - 1]  # the greatest at most since
    last = last_at.date().isoformat()
    return _candidate(
        r,
        Purpose.WINBACK,
        due_at=last_at + timedelta(days=crossed),
        reason=f"win-back: no order for {since:.0f} d since {last} (check-in {crossed} d)",
        key=f"winback:{r.client_id}:{last}:{crossed}",
        data={"silence_days": int(since), "threshold_days": crossed},
    )


def _nps(r: Any, rules: PlanningRules, delivered: datetime) -> Candidate:
    day = delivered.date().isoformat()
    return _candidate(
        r,
        Purpose.NPS,
        due_at=delivered + timedelta(days=rules.nps_after_delivery_days),
        reason=f"NPS: order delivered {day}, no score in {rules.nps_window_days} d",
        key=f"nps:{r.client_id}:{day}",
        data={"delivered": str(delivered)},
    )


def _candidate(
    r: Any,
    purpose: Purpose,
    *,
    due_at: datetime,
    reason: str,
    key: str,
    data: dict[str, Any],
) -> Candidate:
    # Positional, in CANDIDATE_FIELDS' order: a frozen dataclass takes keywords at about twice
    # the cost (~1 us a candidate; a test checks the order against the dataclass's fields).
    return Candidate(
        r.client_id,
        r.external_id,
        purpose,
        due_at,
        reason,
        key,
        r.timezone,
        _PREFERRED[r.preferred_channel],
        bool(r.linked),
        bool(r.telegram_reachable),
        _GRANTS[r.service_call, r.service_telegram],
        False,
        data,
        _GRANTS[r.advertising_call, r.advertising_telegram],
    )


# The order of ``Candidate``'s fields ``_candidate`` passes them in.
CANDIDATE_FIELDS = (
    "client_id",
    "external_id",
    "purpose",
    "due_at",
    "reason",
    "key",
    "timezone",
    "preferred_channel",
    "telegram_linked",
    "telegram_reachable",
    "consents",
    "opted_out",
    "data",
    "ad_consents",
)
