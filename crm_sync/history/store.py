"""The client history store: SQLAlchemy implementation of ``povtor.ports.HistoryStore``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import Integer, Table, bindparam, delete, func, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from crm_sync.history import keyset
from crm_sync.history.card_read import card_lists
from crm_sync.history.client_batch import load_clients
from crm_sync.history.client_stats import refresh_client_stats, refresh_last_nps
from crm_sync.history.convert import (
    client_from_row,
    consent_from_values,
    event_from_row,
    item_to_json,
    nps_from_row,
    order_from_row,
    task_from_row,
)
from crm_sync.history.order_events import (
    ORDER_ENTRIES_FIRST,
    ORDER_ENTRY_BASE,
    is_order_entry,
    merged_timeline,
    order_entries_query,
)
from crm_sync.history.tables import (
    ClientPhoneRow,
    ClientRow,
    ConsentRow,
    EventRow,
    NpsResponseRow,
    OrderRow,
    TaskRow,
)
from povtor.db import insert_ignore, read_sessions, table_of, utcnow
from povtor.domain import (
    NPS_SCORES,
    ChannelKind,
    Client,
    ConsentChannel,
    ContactKind,
    EventKind,
    NpsResponse,
    Order,
    OrderItem,
    Task,
    TaskStatus,
    TimelineEvent,
)
from povtor.errors import NotFound
from povtor.ports import ClientCard, NewEvent, NewNpsResponse, NewTask, NpsCursor, NpsQuery

T = TypeVar("T")
Reader = AsyncSession | AsyncConnection  # what the card's reads run on


@dataclass(frozen=True, slots=True)
class ClientInput:
    """A client as it comes from an import, the demo generator or a test."""

    external_id: str
    name: str = ""
    phones: tuple[str, ...] = ()
    email: str | None = None
    timezone: str = "Europe/Moscow"
    preferred_channel: ChannelKind | None = None
    manager: str | None = None
    consents: tuple[tuple[ConsentChannel, bool, str], ...] = ()
    ad_consents: tuple[tuple[ConsentChannel, bool, str], ...] = ()  # consent to advertising


@dataclass(frozen=True, slots=True)
class OrderInput:
    external_id: str
    client_external_id: str
    placed_at: datetime
    amount: Decimal
    currency: str = "RUB"
    delivered_at: datetime | None = None
    items: tuple[OrderItem, ...] = field(default_factory=tuple)


class SqlHistoryStore:
    """Every read returns frozen dataclasses; every write is one short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions  # writes: ``begin()``, one transaction each
        self._reads = read_sessions(sessions)  # reads: no transaction on PostgreSQL

    # -- clients -----------------------------------------------------------------------------

    async def _load_client(self, session: AsyncSession, row: ClientRow) -> Client:
        phones = await session.scalars(
            select(ClientPhoneRow.phone)
            .where(ClientPhoneRow.client_id == row.id)
            .order_by(ClientPhoneRow.position, ClientPhoneRow.id)
        )
        consents = await session.scalars(select(ConsentRow).where(ConsentRow.client_id == row.id))
        return client_from_row(
            row,
            list(phones),
            [consent_from_values(c.channel, c.kind, c.granted, c.source, c.at) for c in consents],
        )

    async def get_client(self, client_id: int) -> Client:
        async with self._reads() as session:
            # one statement on PostgreSQL (phones and consents in arrays), no ORM object
            found = await load_clients(session, [client_id])
        if client_id not in found:
            raise NotFound(f"client #{client_id} not found")
        return found[client_id]

    async def _find_one(self, where: Any) -> Client | None:
        async with self._reads() as session:
            query = select(ClientRow).where(where).order_by(ClientRow.id).limit(1)
            row = (await session.scalars(query)).first()
            return None if row is None else await self._load_client(session, row)

    async def find_client(self, external_id: str) -> Client | None:
        return await self._find_one(ClientRow.external_id == external_id)

    async def find_client_by_chat(self, chat_id: int) -> Client | None:
        return await self._find_one(ClientRow.telegram_chat_id == chat_id)

    async def find_client_by_phone(self, phone_e164: str) -> Client | None:
        owner = select(ClientPhoneRow.client_id).where(ClientPhoneRow.phone == phone_e164)
        return await self._find_one(ClientRow.id.in_(owner.scalar_subquery()))

    async def create_client(self, data: ClientInput) -> Client:
        now = utcnow()
        async with self._sessions.begin() as session:
            row = ClientRow(
                external_id=data.external_id,
                name=data.name,
                email=data.email,
                timezone=data.timezone,
                preferred_channel=data.preferred_channel.value if data.preferred_channel else None,
                manager=data.manager,
                telegram_reachable=True,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            for pos, phone in enumerate(dict.fromkeys(data.phones)):
                session.add(ClientPhoneRow(client_id=row.id, phone=phone, position=pos))
            kinds = [(ContactKind.SERVICE, c) for c in data.consents]
            kinds += [(ContactKind.ADVERTISING, c) for c in data.ad_consents]
            for kind, (channel, granted, source) in kinds:
                session.add(
                    ConsentRow(
                        client_id=row.id,
                        channel=channel.value,
                        kind=kind.value,
                        granted=granted,
                        source=source,
                        at=now,
                    )
                )
            await session.flush()
            return await self._load_client(session, row)

    async def _update_client(self, client_id: int, **values: Any) -> Client:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ClientRow)
                .where(ClientRow.id == client_id)
                .values(updated_at=utcnow(), **values)
                .returning(ClientRow.id)
            )
            if result.first() is None:
                raise NotFound(f"client #{client_id} not found")
        return await self.get_client(client_id)

    async def set_opt_out(self, client_id: int, opted_out: bool, *, source: str) -> Client:
        now = utcnow()
        client = await self._update_client(
            client_id,
            opted_out_at=now if opted_out else None,
            opt_out_source=source if opted_out else None,
        )
        await self.append_event(
            NewEvent(
                client_id=client_id,
                kind=EventKind.OPT_OUT if opted_out else EventKind.OPT_IN,
                summary="Клиент отказался от контактов" if opted_out else "Клиент снова согласен",
                at=now,
                data={"source": source},
            )
        )
        return client

    async def set_consent(
        self,
        client_id: int,
        channel: ConsentChannel,
        granted: bool,
        *,
        source: str,
        kind: ContactKind = ContactKind.SERVICE,
        at: datetime | None = None,
        by: str | None = None,
    ) -> Client:
        """Records a consent (or refusal) and its change in the timeline; ``at`` is when the
        client gave it (defaults to now), ``by`` who recorded it (a manager's login)."""
        now = at or utcnow()
        async with self._sessions.begin() as session:
            await session.execute(
                delete(ConsentRow).where(
                    ConsentRow.client_id == client_id,
                    ConsentRow.channel == channel.value,
                    ConsentRow.kind == kind.value,
                )
            )
            session.add(
                ConsentRow(
                    client_id=client_id,
                    channel=channel.value,
                    kind=kind.value,
                    granted=granted,
                    source=source[:64],
                    at=now,
                )
            )
        await self.append_event(
            NewEvent(
                client_id=client_id,
                kind=EventKind.CONSENT,
                summary=consent_summary(channel, kind, granted),
                at=now,
                data={
                    "channel": channel.value,
                    "kind": kind.value,
                    "granted": granted,
                    "source": source,
                    **({"by": by} if by else {}),
                },
            )
        )
        return await self.get_client(client_id)

    async def link_telegram(self, client_id: int, chat_id: int | None) -> Client:
        if chat_id is not None:  # a chat belongs to one client at a time
            async with self._sessions.begin() as session:
                await session.execute(
                    update(ClientRow)
                    .where(ClientRow.telegram_chat_id == chat_id, ClientRow.id != client_id)
                    .values(telegram_chat_id=None, updated_at=utcnow())
                )
        return await self._update_client(
            client_id, telegram_chat_id=chat_id, telegram_reachable=True
        )

    async def set_telegram_reachable(self, client_id: int, reachable: bool) -> Client:
        return await self._update_client(client_id, telegram_reachable=reachable)

    # -- orders ------------------------------------------------------------------------------

    async def add_order(self, data: OrderInput) -> Order:
        client = await self.find_client(data.client_external_id)
        if client is None:
            raise NotFound(f"client {data.client_external_id!r} not found")
        now = utcnow()
        async with self._sessions.begin() as session:
            row = OrderRow(
                external_id=data.external_id,
                client_id=client.id,
                placed_at=data.placed_at,
                delivered_at=data.delivered_at,
                amount=data.amount,
                currency=data.currency,
                items=[item_to_json(i) for i in data.items] or None,
                category=next((i.category for i in data.items if i.category), None),
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            await refresh_client_stats(await session.connection(), [client.id])
            return order_from_row(row)

    async def list_orders(self, client_id: int, limit: int = 50) -> Sequence[Order]:
        async with self._reads() as session:
            return await _orders(session, client_id, limit)

    # -- timeline ----------------------------------------------------------------------------

    async def timeline(
        self, client_id: int, *, before_id: int | None = None, limit: int = 50
    ) -> Sequence[TimelineEvent]:
        """By when things happened, newest first (an order imported today that was placed last
        year sits at last year); page with ``before_id`` = the last id of the previous page.
        Events and orders (``order_events``) merged: each read through its client index."""
        async with self._reads() as session:
            return await _timeline(session, client_id, before_id, limit)

    async def append_event(self, event: NewEvent) -> TimelineEvent:
        """One statement for a new event (INSERT ... RETURNING); with a dedup key seen before,
        the stored event."""
        [stored] = await self.append_events([event])
        return stored

    async def _insert_once(
        self, session: AsyncSession, model: Any, values: dict[str, Any], dedup_key: str | None
    ) -> Any:
        """Insert a row, or return the existing one with the same ``dedup_key``."""
        if dedup_key is None:
            row = model(**values)
            session.add(row)
            await session.flush()
            return row
        table: Table = model.__table__
        inserted = (
            await session.execute(insert_ignore(session, table, values).returning(*table.c))
        ).first()
        if inserted is not None:
            return inserted
        existing = select(*table.c).where(table.c.dedup_key == dedup_key)
        return (await session.execute(existing)).one()

    # -- NPS -----------------------------------------------------------------------------------

    async def record_nps(self, response: NewNpsResponse) -> NpsResponse:
        at = response.answered_at or utcnow()
        values = {
            "client_id": response.client_id,
            "score": response.score,
            "reason_text": response.reason_text,
            "reason_category": response.reason_category.value
            if response.reason_category
            else None,
            "channel": response.channel.value,
            "source_kind": response.source_kind,
            "source_id": response.source_id,
            "answered_at": at,
            "dedup_key": response.dedup_key,
        }
        async with self._sessions.begin() as session:
            row = await self._insert_once(session, NpsResponseRow, values, response.dedup_key)
            nps = nps_from_row(row)
            if nps.score is not None:
                await refresh_last_nps(await session.connection(), [nps.client_id])
        summary = f"Оценка NPS: {nps.score}" if nps.score is not None else "Ответ без оценки"
        if nps.reason_text:
            summary += f". {nps.reason_text}"
        await self.append_event(
            NewEvent(
                client_id=nps.client_id,
                kind=EventKind.NPS_ANSWER,
                summary=summary,
                at=nps.answered_at,
                ref=f"nps:{nps.id}",
                data={"score": nps.score, "channel": nps.channel.value},
                dedup_key=f"nps:{nps.id}",
            )
        )
        return nps

    async def list_nps(
        self, *, since: datetime | None = None, limit: int = 100
    ) -> Sequence[NpsResponse]:
        query = select(NpsResponseRow)
        if since is not None:
            query = query.where(NpsResponseRow.answered_at >= since)
        async with self._reads() as session:
            rows = await session.scalars(
                query.order_by(NpsResponseRow.answered_at.desc()).limit(limit)
            )
            return [nps_from_row(r) for r in rows]

    # -- tasks -------------------------------------------------------------------------------

    async def create_task(self, task: NewTask) -> Task:
        values = _task_values(task, utcnow())
        async with self._sessions.begin() as session:
            row = await self._insert_once(session, TaskRow, values, task.dedup_key)
            created = task_from_row(row)
        if created.client_id is not None:
            await self.append_event(
                NewEvent(
                    client_id=created.client_id,
                    kind=EventKind.TASK,
                    summary=f"Задача: {created.title}",
                    at=created.created_at,
                    ref=f"task:{created.id}",
                    data={"kind": created.kind, "due_at": created.due_at.isoformat()},
                    dedup_key=f"task:{created.id}",
                )
            )
        return created

    async def update_task(
        self,
        task_id: int,
        *,
        status: TaskStatus | None = None,
        assignee: str | None = None,
        due_at: datetime | None = None,
        note: str | None = None,
    ) -> Task:
        values: dict[str, Any] = {"updated_at": utcnow()}
        if status is not None:
            values["status"] = status.value
        if assignee is not None:
            values["assignee"] = assignee
        if due_at is not None:
            values["due_at"] = due_at
        if note is not None:
            values["note"] = note
        async with self._sessions.begin() as session:
            await session.execute(update(TaskRow).where(TaskRow.id == task_id).values(**values))
            row = await session.get(TaskRow, task_id)
            if row is None:
                raise NotFound(f"task #{task_id} not found")
            return task_from_row(row)

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        assignee: str | None = None,
        limit: int = 100,
        after: tuple[datetime, int] | None = None,
    ) -> Sequence[Task]:
        tasks, _ = await self._task_page(status, assignee, limit, after, named=False)
        return tasks

    async def list_tasks_named(
        self,
        *,
        status: TaskStatus | None = None,
        assignee: str | None = None,
        limit: int = 100,
        after: tuple[datetime, int] | None = None,
    ) -> tuple[Sequence[Task], Mapping[int, str]]:
        """The page and its clients' names in one statement (joined to ``clients`` by key)."""
        return await self._task_page(status, assignee, limit, after, named=True)

    async def _task_page(
        self,
        status: TaskStatus | None,
        assignee: str | None,
        limit: int,
        after: tuple[datetime, int] | None,
        *,
        named: bool,
    ) -> tuple[list[Task], dict[int, str]]:
        # Core rows, not ORM objects: a page of them is read on every task list request
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status.value
        if assignee is not None:
            params["assignee"] = assignee
        if after is not None:  # keyset: the tasks after (due_at, id) of the previous page
            params["after_due"], params["after_id"] = after
        async with self._reads() as session:
            stmt = _task_list_statement(frozenset(params), named)
            rows = list(await session.execute(stmt, params))
        names = {r.client_id: r.client_name for r in rows if named and r.client_name is not None}
        return [task_from_row(cast(TaskRow, r)) for r in rows], names

    # -- reads for the manager dashboard -----------------------------------------------------

    async def get_clients(self, client_ids: Sequence[int]) -> Mapping[int, Client]:
        """Many clients with phones and consents: one query on PostgreSQL, three on SQLite."""
        async with self._reads() as session:
            return await load_clients(session, client_ids)

    async def client_names(self, client_ids: Sequence[int]) -> Mapping[int, str]:
        ids = sorted(set(client_ids))
        if not ids:
            return {}
        async with self._reads() as session:
            rows = await session.execute(_NAMES, {"ids": ids})
            return {cid: name for cid, name in rows}

    async def search_clients(
        self, query: str = "", *, after_id: int | None = None, limit: int = 50
    ) -> Sequence[Client]:
        """By name (substring, any case), phone digits (4 or more) or exact external id."""
        stmt = select(ClientRow.id)
        if after_id is not None:
            stmt = stmt.where(ClientRow.id > after_id)
        text_query = query.strip()
        async with self._reads() as session:
            if text_query:
                dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
                matches = client_matches(text_query, case_folding=dialect == "postgresql")
                stmt = stmt.where(or_(*matches))
            ids = list(await session.scalars(stmt.order_by(ClientRow.id).limit(limit)))
        found = await self.get_clients(ids)
        return [found[i] for i in ids if i in found]

    async def list_nps_answers(
        self, query: NpsQuery, *, before: NpsCursor | None = None, limit: int = 50
    ) -> Sequence[NpsResponse]:
        stmt, params = _nps_page(query, before, limit, named=False)
        async with self._reads() as session:
            rows = await session.execute(stmt, params)
            return [nps_from_row(cast(NpsResponseRow, r)) for r in rows]

    async def list_nps_answers_named(
        self, query: NpsQuery, *, before: NpsCursor | None = None, limit: int = 50
    ) -> tuple[Sequence[NpsResponse], Mapping[int, str]]:
        """The page and its clients' names in one statement: the answers' index read joined
        to ``clients`` by key, where the names took a second connection and statement."""
        stmt, params = _nps_page(query, before, limit, named=True)
        async with self._reads() as session:
            rows = list(await session.execute(stmt, params))
        names = {r.client_id: r.client_name for r in rows if r.client_name is not None}
        return [nps_from_row(cast(NpsResponseRow, r)) for r in rows], names

    async def count_tasks(self, statuses: Sequence[TaskStatus]) -> int:
        async with self._reads() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(TaskRow)
                .where(TaskRow.status.in_([s.value for s in statuses]))
            )
            return int(count or 0)

    async def get_task(self, task_id: int) -> Task:
        async with self._reads() as session:
            row = await session.get(TaskRow, task_id)
            if row is None:
                raise NotFound(f"task #{task_id} not found")
            return task_from_row(row)

    async def list_client_tasks(self, client_id: int, *, limit: int = 50) -> Sequence[Task]:
        """A client's tasks: unfinished first by due date, then finished ones, newest first."""
        async with self._reads() as session:
            return await _client_tasks(session, client_id, limit)

    async def tasks_of_clients(
        self, client_ids: Sequence[int], *, limit: int = 50
    ) -> Mapping[int, Sequence[Task]]:
        """One statement for many clients: each client's first ``limit`` in the card's order
        (a window over the clients' tasks, read by ``client_id``)."""
        found: dict[int, list[Task]] = {c: [] for c in client_ids}
        if not client_ids:
            return found
        finished = TaskRow.status.in_([TaskStatus.DONE.value, TaskStatus.CANCELLED.value])
        order = (finished, TaskRow.due_at, TaskRow.id)
        rank = func.row_number().over(partition_by=TaskRow.client_id, order_by=order)
        ranked = (
            select(*table_of(TaskRow).c, rank.label("rank"))
            .where(TaskRow.client_id.in_(list(found)))
            .subquery()
        )
        stmt = select(*(ranked.c[c.name] for c in table_of(TaskRow).c)).where(
            ranked.c.rank <= limit
        )
        async with self._reads() as session:
            rows = await session.execute(stmt.order_by(ranked.c.client_id, ranked.c.rank))
            for r in rows:
                found[r.client_id].append(task_from_row(cast(TaskRow, r)))
        return found

    async def client_card(
        self,
        client_id: int,
        *,
        before_id: int | None = None,
        events: int = 50,
        orders: int = 20,
        answers: int = 10,
        tasks: int = 50,
    ) -> ClientCard:
        """Every read of the card in one session: one connection checked out, one transaction,
        where the separate reads took one each; a limit of 0 skips that read."""
        async with self._reads() as session:
            # Core statements on the session's connection: the ORM's execution path cost
            # ~0.2 ms of CPU more per statement, and the card runs six on every request
            conn = await session.connection()
            found = await load_clients(conn, [client_id])
            if client_id not in found:
                raise NotFound(f"client #{client_id} not found")
            if before_id is None and conn.dialect.name == "postgresql":  # the lists in one read
                timeline, newest, open_first, answered = await card_lists(
                    conn, client_id, events=events, orders=orders, tasks=tasks, answers=answers
                )
                return ClientCard(found[client_id], timeline, newest, open_first, answered)
            return ClientCard(
                client=found[client_id],
                timeline=await _timeline(conn, client_id, before_id, events) if events else [],
                orders=await _orders(conn, client_id, orders) if orders else [],
                tasks=await _client_tasks(conn, client_id, tasks) if tasks else [],
                answers=await _client_answers(conn, client_id, answers) if answers else [],
            )

    # -- batch writes (added by the Telegram bot: a page of button presses at once) -----------

    async def append_events(self, events: Sequence[NewEvent]) -> Sequence[TimelineEvent]:
        """Many events in one transaction: one INSERT ... ON CONFLICT (dedup_key) DO NOTHING
        RETURNING for those with a dedup key (the existing ones read back), in input order."""
        if not events:
            return []
        now = utcnow()
        rows = [_event_values(e, now) for e in events]
        async with self._sessions.begin() as session:
            return await _insert_rows(await session.connection(), _EVENTS, rows, event_from_row)

    async def create_tasks(self, tasks: Sequence[NewTask]) -> Sequence[Task]:
        """Many tasks and their timeline events in one transaction (see ``append_events``);
        a task whose dedup key exists already comes back as it is, in input order."""
        if not tasks:
            return []
        now = utcnow()
        rows = [_task_values(t, now) for t in tasks]
        async with self._sessions.begin() as session:
            conn = await session.connection()
            created = await _insert_rows(conn, _TASKS, rows, task_from_row)
            events = [
                _event_values(
                    NewEvent(
                        client_id=t.client_id,
                        kind=EventKind.TASK,
                        summary=f"Задача: {t.title}",
                        at=t.created_at,
                        ref=f"task:{t.id}",
                        data={"kind": t.kind, "due_at": t.due_at.isoformat()},
                        dedup_key=f"task:{t.id}",
                    ),
                    now,
                )
                for t in dict.fromkeys(created)
                if t.client_id is not None
            ]
            await _insert_rows(conn, _EVENTS, events, event_from_row)
        return created


_PHONE_CHARS = frozenset("0123456789+-() ")


def client_matches(
    query: str, *, case_folding: bool, phone_suffix_only: bool = False
) -> list[Any]:
    """Conditions, any of which makes a client match a dashboard search.

    ``phone_suffix_only`` (for those who see masked numbers): digits match only as the last 4
    of a number or as the whole number, so a number cannot be rebuilt by probing its parts."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if case_folding:
        conditions: list[Any] = [ClientRow.name.ilike(f"%{escaped}%", escape="\\")]
    else:  # SQLite folds ASCII only: try the usual spellings of a Cyrillic name
        variants = (
            escaped,
            escaped.lower(),
            escaped.capitalize(),
            escaped.title(),
            escaped.upper(),
        )
        conditions = [ClientRow.name.like(f"%{v}%", escape="\\") for v in dict.fromkeys(variants)]
    conditions.append(ClientRow.external_id == query)
    digits = "".join(ch for ch in query if ch.isdigit())
    if len(digits) >= 4 and set(query) <= _PHONE_CHARS:
        if len(digits) == 11 and digits.startswith("8"):
            digits = "7" + digits[1:]  # 8 916 ... is how Russians write +7 916 ...
        phone = ClientPhoneRow.phone
        matching: Any
        if not phone_suffix_only:
            matching = phone.like(f"%{digits}%")
        elif len(digits) == 4:
            matching = phone.like(f"%{digits}")
        elif len(digits) == 10:  # 916 123-45-67: a Russian number without its country code
            matching = phone == f"+7{digits}"
        elif len(digits) >= 11:
            matching = phone == f"+{digits}"
        else:
            return conditions
        owners = select(ClientPhoneRow.client_id).where(matching)
        # the ids found by name or code and by phone, united: a phone subquery OR-ed with the
        # rest is tested client by client (every client read when few match)
        by_text = select(ClientRow.id).where(or_(*conditions))
        return [ClientRow.id.in_(union(by_text, owners).scalar_subquery())]
    return conditions


# -- batch writes --------------------------------------------------------------------------

_EVENTS = table_of(EventRow)
_TASKS = table_of(TaskRow)


def _event_values(event: NewEvent, now: datetime) -> dict[str, Any]:
    return {
        "client_id": event.client_id,
        "kind": event.kind.value,
        "at": event.at or now,
        "summary": event.summary,
        "ref": event.ref,
        "data": dict(event.data) if event.data else None,
        "dedup_key": event.dedup_key,
    }


def _task_values(task: NewTask, now: datetime) -> dict[str, Any]:
    return {
        "client_id": task.client_id,
        "kind": task.kind,
        "title": task.title,
        "due_at": task.due_at,
        "status": TaskStatus.OPEN.value,
        "assignee": task.assignee,
        "source_ref": task.source_ref,
        "note": task.note,
        "dedup_key": task.dedup_key,
        "created_at": now,
        "updated_at": now,
    }


_BY_CLIENT = {"client_id": bindparam("client_id"), "limit": bindparam("limit", type_=Integer)}
# the card's reads, built once (building a statement costs more CPU than running it)
_CLIENT_ORDERS = (
    select(*table_of(OrderRow).c)
    .where(OrderRow.client_id == _BY_CLIENT["client_id"])
    .order_by(OrderRow.placed_at.desc(), OrderRow.id.desc())
    .limit(_BY_CLIENT["limit"])
)
_CLIENT_EVENTS = (
    select(*table_of(EventRow).c)
    .where(EventRow.client_id == _BY_CLIENT["client_id"])
    .order_by(EventRow.at.desc(), EventRow.id.desc())
    .limit(_BY_CLIENT["limit"])
)


async def _orders(session: Reader, client_id: int, limit: int) -> list[Order]:
    rows = await session.execute(_CLIENT_ORDERS, {"client_id": client_id, "limit": limit})
    return [order_from_row(cast(OrderRow, r)) for r in rows]


async def _timeline(
    session: Reader, client_id: int, before_id: int | None, limit: int
) -> list[TimelineEvent]:
    # Core rows, not ORM objects: a page of them is read on every client card
    query = select(*table_of(EventRow).c).where(EventRow.client_id == client_id)
    before = None
    if before_id is not None:
        if is_order_entry(before_id):
            last_at = await session.scalar(
                select(OrderRow.placed_at).where(
                    OrderRow.id == before_id - ORDER_ENTRY_BASE,
                    OrderRow.client_id == client_id,
                )
            )
        else:
            last_at = await session.scalar(
                select(EventRow.at).where(
                    EventRow.id == before_id, EventRow.client_id == client_id
                )
            )
        if last_at is None:
            return []
        before = (last_at, before_id)
        query = query.where(keyset.before(EventRow.at, EventRow.id, last_at, before_id))
    if before is None:  # the first page, on every card: its statements built once
        rows = await session.execute(_CLIENT_EVENTS, {"client_id": client_id, "limit": limit})
        orders = await session.execute(
            ORDER_ENTRIES_FIRST, {"client_id": client_id, "limit": limit}
        )
    else:
        rows = await session.execute(
            query.order_by(EventRow.at.desc(), EventRow.id.desc()).limit(limit)
        )
        orders = await session.execute(order_entries_query(client_id, before, limit))
    events = [event_from_row(cast(EventRow, r)) for r in rows]
    return merged_timeline(events, orders.all(), limit)


_NAMES = select(table_of(ClientRow).c.id, table_of(ClientRow).c.name).where(
    table_of(ClientRow).c.id.in_(bindparam("ids", expanding=True))
)


@cache
def _task_list_statement(conditions: frozenset[str], named: bool) -> Any:
    """The task list's statement for this shape (built once per shape, values bound)."""
    t, c = table_of(TaskRow), table_of(ClientRow)
    stmt = select(*t.c)
    if named:
        stmt = stmt.add_columns(c.c.name.label("client_name")).outerjoin(
            c, c.c.id == t.c.client_id
        )
    if "status" in conditions:
        stmt = stmt.where(t.c.status == bindparam("status"))
    if "assignee" in conditions:
        stmt = stmt.where(t.c.assignee == bindparam("assignee"))
    if "after_due" in conditions:
        due: Any = bindparam("after_due")
        stmt = stmt.where(keyset.after(t.c.due_at, t.c.id, due, bindparam("after_id")))
    return stmt.order_by(t.c.due_at, t.c.id).limit(bindparam("limit", type_=Integer))


def _nps_page(
    query: NpsQuery, before: NpsCursor | None, limit: int, *, named: bool
) -> tuple[Any, dict[str, Any]]:
    """The answers list's statement for this shape of query (built once per shape, the
    values bound) and its parameters."""
    params: dict[str, Any] = {"limit": limit}
    if query.group is not None:
        params["low"], params["high"] = NPS_SCORES[query.group]
    if query.category is not None:
        params["category"] = query.category.value
    if query.since is not None:
        params["since"] = query.since
    if query.until is not None:
        params["until"] = query.until
    if query.client_id is not None:
        params["client_id"] = query.client_id
    if before is not None:
        params["before_at"], params["before_id"] = before.answered_at, before.id
    return _nps_statement(frozenset(params), named), params


@cache
def _nps_statement(conditions: frozenset[str], named: bool) -> Any:
    """Building a statement costs more CPU than running it through asyncpg: each shape
    of the list (which filters, a keyset or not, with names or not) is built once."""
    n, c = table_of(NpsResponseRow), table_of(ClientRow)
    stmt = select(*n.c)
    if named:
        stmt = stmt.add_columns(c.c.name.label("client_name")).outerjoin(
            c, c.c.id == n.c.client_id
        )
    if "low" in conditions:
        stmt = stmt.where(n.c.score >= bindparam("low"), n.c.score <= bindparam("high"))
    if "category" in conditions:
        stmt = stmt.where(n.c.reason_category == bindparam("category"))
    if "since" in conditions:
        stmt = stmt.where(n.c.answered_at >= bindparam("since"))
    if "until" in conditions:
        stmt = stmt.where(n.c.answered_at < bindparam("until"))
    if "client_id" in conditions:
        stmt = stmt.where(n.c.client_id == bindparam("client_id"))
    if "before_at" in conditions:
        at: Any = bindparam("before_at")
        stmt = stmt.where(keyset.before(n.c.answered_at, n.c.id, at, bindparam("before_id")))
    order = (n.c.answered_at.desc(), n.c.id.desc())
    return stmt.order_by(*order).limit(bindparam("limit", type_=Integer))


async def _client_answers(session: Reader, client_id: int, limit: int) -> list[NpsResponse]:
    stmt, params = _nps_page(NpsQuery(client_id=client_id), None, limit, named=False)
    return [nps_from_row(cast(NpsResponseRow, r)) for r in await session.execute(stmt, params)]


def _client_tasks_statement() -> Any:
    finished = TaskRow.status.in_([TaskStatus.DONE.value, TaskStatus.CANCELLED.value])
    return (
        select(*table_of(TaskRow).c)
        .where(TaskRow.client_id == bindparam("client_id"))
        .order_by(finished, TaskRow.due_at, TaskRow.id)
        .limit(bindparam("limit", type_=Integer))
    )


_CLIENT_TASKS = _client_tasks_statement()  # built once: the card reads it on every request


async def _client_tasks(session: Reader, client_id: int, limit: int) -> list[Task]:
    rows = await session.execute(_CLIENT_TASKS, {"client_id": client_id, "limit": limit})
    return [task_from_row(cast(TaskRow, r)) for r in rows]


async def _insert_rows(
    conn: AsyncConnection, table: Table, rows: list[dict[str, Any]], convert: Callable[[Any], T]
) -> list[T]:
    """Insert rows keyed by ``dedup_key`` once: the new ones come back from RETURNING, the
    existing ones (earlier, or twice in ``rows``) are read by key; results in input order."""
    if not rows:
        return []
    found: dict[str, T] = {}
    keyed = [r for r in rows if r["dedup_key"] is not None]
    if keyed:
        stmt = insert_ignore(conn, table, on=[table.c.dedup_key]).returning(*table.c)
        for row in await conn.execute(stmt, keyed):
            found[row.dedup_key] = convert(row)
        missing = list({r["dedup_key"] for r in keyed} - found.keys())
        if missing:
            query = select(*table.c).where(table.c.dedup_key.in_(missing))
            for row in await conn.execute(query):
                found[row.dedup_key] = convert(row)
    result: list[T] = []
    for values in rows:
        key = values["dedup_key"]
        if key is None:  # no key: always a new row
            row = (await conn.execute(table.insert().returning(*table.c), values)).one()
            result.append(convert(row))
        else:
            result.append(found[key])
    return result


_CHANNEL_RU = {
    ConsentChannel.CALL: "звонки",
    ConsentChannel.TELEGRAM: "Telegram",
    ConsentChannel.SMS: "SMS",
    ConsentChannel.EMAIL: "e-mail",
}


def consent_summary(channel: ConsentChannel, kind: ContactKind, granted: bool) -> str:
    """«Согласие на рекламу (звонки): да» / «Согласие на канал Telegram: нет»."""
    what = "на рекламу" if kind is ContactKind.ADVERTISING else "на канал"
    return f"Согласие {what} ({_CHANNEL_RU[channel]}): {'да' if granted else 'нет'}"
