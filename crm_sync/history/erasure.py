"""``ClientErasure`` of the client history store: the client and everything of it (phones,
consents, orders, timeline, NPS answers, tasks, figures, queued CRM pushes), the stored report
cells that list it, and the tasks about an unknown contact that carry its phone or chat."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import ColumnElement, Table, and_, delete, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.history.tables import (
    ClientPhoneRow,
    ClientRow,
    ClientStatsRow,
    ConsentRow,
    EventRow,
    NpsResponseRow,
    OrderRow,
    TaskRow,
)
from crm_sync.metrics.tables import ReportCellRow
from povtor.db import execute_dml, table_of
from povtor.ports import ErasureSubject

TASKS = table_of(TaskRow)
# what goes by client id, children first, each counted; queued CRM pushes and cached CRM
# contacts go with the client (their foreign keys cascade)
BY_CLIENT: tuple[tuple[str, Table], ...] = (
    ("orders", table_of(OrderRow)),
    ("events", table_of(EventRow)),
    ("nps_answers", table_of(NpsResponseRow)),
    ("tasks", TASKS),
    ("consents", table_of(ConsentRow)),
    ("phones", table_of(ClientPhoneRow)),
    ("stats", table_of(ClientStatsRow)),
    ("report_cells", table_of(ReportCellRow)),
)
CLIENTS = table_of(ClientRow)


class HistoryErasure:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def erase_clients(self, subjects: Sequence[ErasureSubject]) -> Mapping[str, int]:
        """One transaction: all of it goes, or nothing."""
        ids = [s.client_id for s in subjects]
        removed: dict[str, int] = {}
        if not ids:
            return removed
        async with self._sessions.begin() as session:
            for name, table in BY_CLIENT:
                result = await execute_dml(
                    session, delete(table).where(table.c.client_id.in_(ids))
                )
                removed[name] = int(result.rowcount)
            unlinked = _unlinked_tasks(subjects)
            if unlinked is not None:
                result = await execute_dml(
                    session, delete(TASKS).where(and_(TASKS.c.client_id.is_(None), unlinked))
                )
                removed["tasks"] += int(result.rowcount)
            result = await execute_dml(session, delete(CLIENTS).where(CLIENTS.c.id.in_(ids)))
            removed["clients"] = int(result.rowcount)
        return removed


def _unlinked_tasks(subjects: Sequence[ErasureSubject]) -> ColumnElement[bool] | None:
    """Tasks about a contact shared in Telegram that matched no client: their note holds the
    phone, their source the chat."""
    terms = []
    for subject in subjects:
        terms += [TASKS.c.note.contains(phone, autoescape=True) for phone in subject.phones]
        if subject.chat_id is not None:
            terms.append(TASKS.c.source_ref == f"telegram:{subject.chat_id}")
    return or_(*terms) if terms else None
