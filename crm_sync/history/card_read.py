"""The client card's lists in one PostgreSQL statement.

The card shows a client's newest events and orders (merged into the timeline), orders, tasks
and NPS answers. Read one statement each, SQLAlchemy's execution and result processing cost
~0.3 ms of CPU per statement, most of the card's cost. Here PostgreSQL builds each list as a
JSON array (``json_agg`` over the same ordered, limited read by the same index) in one
statement, and the rows are converted from JSON: ~0.3 ms for all of them.

The columns come from the tables' metadata, so a column added to a table is read here too;
``numeric`` columns are read as text (JSON numbers would lose their scale to ``float``) and
timestamps are parsed from the ISO text PostgreSQL writes, to aware UTC as ``UtcDateTime``
gives them. ``tests/integration/store/test_dashboard_queries.py`` checks the card equal to
the separate reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Numeric, Table, TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_sync.history.convert import event_from_row, nps_from_row, order_from_row, task_from_row
from crm_sync.history.order_events import merged_timeline
from crm_sync.history.tables import EventRow, NpsResponseRow, OrderRow, TaskRow
from povtor.db import UtcDateTime, table_of
from povtor.domain import NpsResponse, Order, Task, TaskStatus, TimelineEvent

FINISHED = (TaskStatus.DONE.value, TaskStatus.CANCELLED.value)


def _columns(table: Table) -> str:
    return ", ".join(
        f"CAST({c.name} AS text) AS {c.name}" if isinstance(c.type, Numeric) else c.name
        for c in table.c
    )


def _array(table: Table, order: str, limit: str) -> str:
    """The client's rows of ``table`` in ``order``, at most ``:limit``, as one JSON array."""
    return (
        f"(SELECT coalesce(json_agg(r ORDER BY {order}), '[]') FROM ("
        f"SELECT {_columns(table)} FROM {table.name} WHERE client_id = :client_id "
        f"ORDER BY {order} LIMIT :{limit}) AS r)"
    )


def _statement() -> TextClause:
    finished = ", ".join(f"'{status}'" for status in FINISHED)
    lists = [
        _array(table_of(EventRow), "at DESC, id DESC", "events"),
        _array(table_of(OrderRow), "placed_at DESC, id DESC", "orders"),
        _array(table_of(TaskRow), f"status IN ({finished}), due_at, id", "tasks"),
        _array(table_of(NpsResponseRow), "answered_at DESC, id DESC", "answers"),
    ]
    return text(f"SELECT {', '.join(lists)}")


CARD_LISTS = _statement()  # built once: the card reads it on every request


def _from_json(table: Table) -> Callable[[dict[str, Any]], Any]:
    """A JSON object of a row of ``table`` -> an object with the row's attributes."""
    stamps = [c.name for c in table.c if isinstance(c.type, UtcDateTime)]

    def row(values: dict[str, Any]) -> Any:
        for name in stamps:
            value = values[name]
            if value is not None:
                values[name] = datetime.fromisoformat(value).astimezone(UTC)
        return SimpleNamespace(**values)

    return row


_EVENT, _ORDER, _TASK, _ANSWER = (
    _from_json(table_of(t)) for t in (EventRow, OrderRow, TaskRow, NpsResponseRow)
)


async def card_lists(
    conn: AsyncConnection, client_id: int, *, events: int, orders: int, tasks: int, answers: int
) -> tuple[list[TimelineEvent], list[Order], list[Task], list[NpsResponse]]:
    """The first page of the timeline (``events`` entries: events and orders merged), the
    newest ``orders``, the tasks (open first) and the newest answers, in one statement."""
    limits = {"events": events, "orders": max(events, orders), "tasks": tasks, "answers": answers}
    row = (await conn.execute(CARD_LISTS, {"client_id": client_id, **limits})).one()
    newest_orders: Sequence[Any] = [_ORDER(r) for r in row[1]]
    timeline: list[TimelineEvent] = []
    if events:
        own = [event_from_row(_EVENT(r)) for r in row[0]]
        timeline = merged_timeline(own, newest_orders[:events], events)
    return (
        timeline,
        [order_from_row(r) for r in newest_orders[:orders]],
        [task_from_row(_TASK(r)) for r in row[2]],
        [nps_from_row(_ANSWER(r)) for r in row[3]],
    )
