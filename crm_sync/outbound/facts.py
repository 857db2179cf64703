"""What a batch of pushes needs from the store: the events and the NPS answers and tasks they
point to, three queries for the whole batch."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.convert import event_from_row, nps_from_row, task_from_row
from crm_sync.outbound.render import EventFacts, referenced_id
from crm_sync.tables import EventRow, NpsResponseRow, TaskRow


async def load_facts(
    sessions: async_sessionmaker[AsyncSession], event_ids: Sequence[int]
) -> dict[int, EventFacts]:
    async with sessions() as session:
        events = [
            event_from_row(r)
            for r in await session.scalars(
                select(EventRow).where(EventRow.id.in_(list(set(event_ids))))
            )
        ]
        nps_ids = {n for e in events if (n := referenced_id(e.ref, "nps")) is not None}
        task_ids = {t for e in events if (t := referenced_id(e.ref, "task")) is not None}
        nps = (
            {
                r.id: nps_from_row(r)
                for r in await session.scalars(
                    select(NpsResponseRow).where(NpsResponseRow.id.in_(nps_ids))
                )
            }
            if nps_ids
            else {}
        )
        tasks = (
            {
                r.id: task_from_row(r)
                for r in await session.scalars(select(TaskRow).where(TaskRow.id.in_(task_ids)))
            }
            if task_ids
            else {}
        )
    found: dict[int, EventFacts] = {}
    for e in events:
        nps_id, task_id = referenced_id(e.ref, "nps"), referenced_id(e.ref, "task")
        found[e.id] = EventFacts(
            e,
            nps=nps.get(nps_id) if nps_id is not None else None,
            task=tasks.get(task_id) if task_id is not None else None,
        )
    return found
