"""Order cycles of a page of clients in arrays (NumPy), to the bit what PostgreSQL's planning SQL
computed: per group of orders (a client, or a client and a category) the order count, the last
order and the median of the days between consecutive orders.

The input is one page's orders sorted by client and time, as PostgreSQL gives them from its
index on orders (client_id, placed_at) without a sort: ``date_part('epoch', placed_at)`` per
order (float8 seconds) and its category as a code (NULL first, in the database's order of the
categories), by which the orders are grouped here. The SQL it
replaces took each gap as ``(epoch - LAG(epoch)) / 86400.0`` and the median with
``percentile_cont(0.5)``, whose value for an even count is ``lo + 0.5 * (hi - lo)``; the days
since the last order as ``date_part('epoch', as_of - last_at) / 86400.0`` (``days_since``): the
same IEEE operations here give the same floats. Microseconds come back from the epoch by
rounding, exact for times before 2106.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_S = 86400.0
DAY_US = 86_400_000_000
PG_EPOCH_US = 946_684_800_000_000  # PostgreSQL's epoch, 2000-01-01, in microseconds since 1970


@dataclass(frozen=True)
class Cycles:
    """Per group: its first order's index in the input, client, order count, last order
    (microseconds since the epoch), median gap in days (NaN with one order), cycle in days
    (the median, at least ``min_cycle``; ``fallback`` with one order) and days since the last
    order."""

    first: Ints
    client: Ints
    orders: Ints
    last_us: Ints
    median: Floats
    cycle: Floats
    since: Floats


def epoch_seconds(stored: Ints) -> Floats:
    """``date_part('epoch', t)`` of timestamps as PostgreSQL stores them (microseconds since
    2000-01-01; -infinity and infinity the least and greatest int64): PostgreSQL's own
    ``(float8) (t - epoch) / 1000000.0``, the microseconds since 1970 made a float, then divided;
    the same IEEE operations give the same floats here."""
    low, high = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    finite = (stored != low) & (stored != high)
    unix_us = np.where(finite, stored, 0) + PG_EPOCH_US
    seconds: Floats = unix_us.astype(np.float64) / 1e6
    seconds[stored == low] = -np.inf
    seconds[stored == high] = np.inf
    return seconds


def microseconds(epoch_s: Floats) -> Ints:
    """Microseconds since the epoch of ``date_part('epoch', t)`` values."""
    return np.rint(epoch_s * 1e6).astype(np.int64)


def days_since(as_of: datetime, last_us: Ints) -> Floats:
    """``date_part('epoch', as_of - last) / 86400.0``: PostgreSQL's difference of two times is
    an interval of whole days (truncated toward zero) and microseconds, whose float epoch is
    ``microseconds / 1e6 + days * 86400``."""
    gap_us = (as_of - EPOCH) // timedelta(microseconds=1) - last_us
    days = np.sign(gap_us) * (np.abs(gap_us) // DAY_US)
    since: Floats = (((gap_us - days * DAY_US) / 1e6) + (days * 86400).astype(np.float64)) / DAY_S
    return since


def last_at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def _starts(*keys: npt.NDArray[Any]) -> Bools:
    """True where a row starts a new group of equal ``keys`` (rows sorted by them)."""
    start = np.zeros(len(keys[0]), dtype=bool)
    start[:1] = True
    for key in keys:
        start[1:] |= key[1:] != key[:-1]
    return start


def _cycles(
    start: Bools,
    client: Ints,
    epoch_s: Floats,
    as_of: datetime,
    *,
    fallback: float,
    min_cycle: float,
) -> Cycles:
    """``epoch_s`` ascending within each group; ``start`` marks each group's first row."""
    n = len(epoch_s)
    first = np.flatnonzero(start)
    ends = np.append(first[1:], n) - 1
    group = np.cumsum(start) - 1
    gap = np.empty(n)
    gap[1:] = (epoch_s[1:] - epoch_s[:-1]) / DAY_S
    has_gap = ~start
    gaps, owner = gap[has_gap], group[has_gap]
    order = np.lexsort((gaps, owner))  # each group's gaps ascending, groups in turn
    gaps, owner = gaps[order], owner[order]
    count = np.bincount(owner, minlength=len(first))
    gap_start = np.cumsum(count) - count
    median = np.full(len(first), np.nan)
    some = count > 0
    lo = gaps[(gap_start + (count - 1) // 2)[some]]
    hi = gaps[(gap_start + count // 2)[some]]
    median[some] = np.where(count[some] % 2 == 1, lo, lo + 0.5 * (hi - lo))
    last_us = microseconds(epoch_s[ends])
    since = days_since(as_of, last_us)
    cycle = np.where(some, np.maximum(median, min_cycle), fallback)
    return Cycles(first, client[first], ends - first + 1, last_us, median, cycle, since)


def by_category(
    client: Ints,
    category: npt.NDArray[Any],
    epoch_s: Floats,
    as_of: datetime,
    *,
    fallback: float,
    min_cycle: float,
) -> Cycles:
    """Per client and category (codes), in client and category order. The input is sorted by
    client, each client's orders by time (as an index on client and time gives them; sorted by
    category as well works too): the rows are grouped by category here, in a stable sort, so
    each group's orders stay in time order. ``first`` is an index in the input."""
    order = np.lexsort((category, client))  # stable: time order kept within each group
    grouped = _cycles(
        _starts(client[order], category[order]),
        client[order],
        epoch_s[order],
        as_of,
        fallback=fallback,
        min_cycle=min_cycle,
    )
    return replace(grouped, first=order[grouped.first])


def by_client(
    client: Ints, epoch_s: Floats, as_of: datetime, *, fallback: float, min_cycle: float
) -> Cycles:
    """Per client, in client order (the orders re-sorted by time within each client, unless
    they come in time order already: the sort was about half of this at 100k orders)."""
    same = client[1:] == client[:-1]
    if (epoch_s[1:][same] < epoch_s[:-1][same]).any():
        epoch_s = epoch_s[np.lexsort((epoch_s, client))]
    return _cycles(
        _starts(client),  # sorted by client already: the starts do not move
        client,
        epoch_s,
        as_of,
        fallback=fallback,
        min_cycle=min_cycle,
    )


def soonest_due(c: Cycles, *, lead: int, grace: int) -> Ints:
    """Indexes of the groups due for a reorder reminder (days since the last order within
    ``[cycle - lead, cycle + grace)``), the one due soonest per client (least ``cycle - since``;
    on a tie the first in input order, i.e. by category), in client order."""
    due = np.flatnonzero((c.since >= c.cycle - lead) & (c.since < c.cycle + grace))
    if not len(due):
        return due
    order = due[np.lexsort((due, (c.cycle - c.since)[due], c.client[due]))]
    keep = _starts(c.client[order])
    return order[keep]


def silent(c: Cycles, *, first: int, ceiling: float, factor: float) -> Ints:
    """Indexes of the clients due for a win-back check-in: silent at least ``first`` days and
    less than ``ceiling``, and (with more than one order) for ``factor`` of their own cycles."""
    ok = (
        (c.since >= first)
        & (c.since < ceiling)
        & ((c.orders == 1) | (c.since >= c.cycle * factor))
    )
    return np.flatnonzero(ok)


@dataclass(frozen=True)
class Latest:
    """Per client with a value: the greatest value, as microseconds since the epoch."""

    client: Ints
    last_us: Ints


def latest(client: Ints, epoch_s: Floats) -> Latest:
    """Per client (``client`` sorted), the greatest of its ``epoch_s`` (``date_part('epoch',
    t)`` values; -Infinity for none), for the clients with one: SQL's ``MAX(t)`` where ``t``
    is not NULL."""
    first = np.flatnonzero(_starts(client))
    greatest = np.maximum.reduceat(epoch_s, first) if len(first) else epoch_s[:0]
    some = np.isfinite(greatest)
    return Latest(client[first][some], microseconds(greatest[some]))
