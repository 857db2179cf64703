"""aiogram's FSM storage in the bot's own table (``bot_fsm``), so a chat's state survives a
restart and is the same for every worker of one database (SQLite or PostgreSQL).

Besides aiogram's ``BaseStorage`` methods (what handlers reach through ``FSMContext``), it
reads and writes state and data together in one statement (:meth:`read`, :meth:`put`), and
lists the chats left in one state since a time (:meth:`stale`), for the survey's sweep.

:class:`StateOnDemand` is aiogram's FSM middleware without its read of the chat's state for every
update: no handler or filter of the bot matches on the state (the survey keeps its steps through
:class:`bot.chat_state.ChatStates`), so handlers get ``state`` (an ``FSMContext``, which reads
when asked) and ``raw_state`` is read only while a handler or filter takes it; while none takes
``state`` either, no ``FSMContext`` is built at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram import Bot, Router
from aiogram.dispatcher.event.handler import CallableObject
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from aiogram.fsm.storage.memory import DisabledEventIsolation
from aiogram.types import TelegramObject
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.batching import Batch
from bot.tables import BotFsmRow
from povtor.db import dialect_insert, table_of, utcnow

FSM = table_of(BotFsmRow)


@dataclass(frozen=True, slots=True)
class Stored:
    """A chat's FSM record as stored."""

    chat_id: int
    state: str | None
    data: dict[str, Any]
    updated_at: datetime


def _state_name(state: StateType) -> str | None:
    return state.state if isinstance(state, State) else state


class SqlStorage(BaseStorage):
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None
    ) -> None:
        self._sessions = sessions
        # one database serves one bot (one token), so the bot id is left out of the key
        self._keys = key_builder or DefaultKeyBuilder()
        self._reads: Batch[str, Stored | None] = Batch("FSM reads", self._read_many)

    def key(self, key: StorageKey) -> str:
        return self._keys.build(key)

    async def _upsert(self, key: StorageKey, values: dict[str, Any]) -> None:
        row = {"key": self.key(key), "chat_id": key.chat_id, "updated_at": utcnow(), **values}
        async with self._sessions.begin() as session:
            conn = await session.connection()
            stmt = dialect_insert(conn, FSM).values(**row)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[FSM.c.key],
                    set_={name: stmt.excluded[name] for name in row if name != "key"},
                )
            )

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        await self._upsert(key, {"state": _state_name(state)})

    async def get_state(self, key: StorageKey) -> str | None:
        # aiogram's FSM middleware asks this for every update: the updates in flight are
        # read in one query (a page of presses would otherwise cost a query each)
        found = await self._reads.submit(self.key(key))
        return None if found is None else found.state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._upsert(key, {"data": dict(data) or None})

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        found = await self.read(key)
        return {} if found is None else found.data

    async def close(self) -> None:
        """Nothing to close: the sessions belong to the composition root."""

    async def _read_many(self, keys: list[str]) -> list[Stored | None]:
        async with self._sessions() as session:
            rows = (await session.execute(select(FSM).where(FSM.c.key.in_(set(keys))))).all()
        found = {r.key: Stored(r.chat_id, r.state, dict(r.data or {}), r.updated_at) for r in rows}
        return [found.get(key) for key in keys]

    async def read(self, key: StorageKey) -> Stored | None:
        """State and data of ``key`` in one query; None when nothing is stored."""
        async with self._sessions() as session:
            row = (await session.execute(select(FSM).where(FSM.c.key == self.key(key)))).first()
        if row is None:
            return None
        return Stored(row.chat_id, row.state, dict(row.data or {}), row.updated_at)

    async def put(self, key: StorageKey, state: StateType, data: Mapping[str, Any]) -> None:
        """State and data together (one statement), so no reader sees one without the other."""
        await self._upsert(key, {"state": _state_name(state), "data": dict(data) or None})

    async def forget(
        self, key: StorageKey, *, unless_changed_since: datetime | None = None
    ) -> None:
        """Clear the state and data of ``key``; with ``unless_changed_since``, only if nobody
        wrote them after that time (the caller read them then)."""
        query = delete(FSM).where(FSM.c.key == self.key(key))
        if unless_changed_since is not None:
            query = query.where(FSM.c.updated_at <= unless_changed_since)
        async with self._sessions.begin() as session:
            await session.execute(query)

    async def stale(self, state: StateType, before: datetime) -> Sequence[Stored]:
        """The chats in ``state`` since before ``before``, oldest first."""
        query = (
            select(FSM)
            .where(FSM.c.state == _state_name(state), FSM.c.updated_at < before)
            .order_by(FSM.c.updated_at)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [Stored(r.chat_id, r.state, dict(r.data or {}), r.updated_at) for r in rows]


def takes(router: Router, name: str) -> bool:
    """Whether a handler or filter of ``router`` or of a router under it takes ``name`` from
    aiogram's workflow data (or takes every keyword, as aiogram's combined filters do). The
    dispatcher's own handler of updates, which hands every keyword on to the routers, is not
    counted."""
    for each in router.chain_tail:
        plumbing = getattr(each, "_listen_update", None)
        for observer in each.observers.values():
            handlers = [observer._handler, *observer.handlers]  # the router's own filters
            for handler in handlers:
                if plumbing is not None and handler.callback == plumbing:
                    continue
                callables: list[CallableObject] = [handler, *(handler.filters or [])]
                if any(c.varkw or name in c.params for c in callables):
                    return True
    return False


class StateOnDemand(FSMContextMiddleware):
    """aiogram's FSM middleware (same ``state``, ``fsm_storage`` and event isolation) that
    reads ``raw_state`` only if a handler or filter of ``router`` takes it (aiogram's
    ``StateFilter`` does), and builds the ``state`` context only if one takes that (or events
    are isolated per chat: the lock is taken as before). Decided at the first update, once the
    routers are in place; a middleware reading ``raw_state`` or ``state`` from the data would
    not be seen: there is none."""

    def __init__(self, router: Router, base: FSMContextMiddleware) -> None:
        super().__init__(base.storage, base.events_isolation, base.strategy)
        self._router = router
        self._reads: bool | None = None
        self._contexts = True

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if self._reads is None:
            self._reads = takes(self._router, "raw_state")
            isolated = not isinstance(self.events_isolation, DisabledEventIsolation)
            self._contexts = self._reads or isolated or takes(self._router, "state")
        if self._reads:
            return await super().__call__(handler, event, data)
        data["fsm_storage"] = self.storage
        if not self._contexts:  # nobody asks: an update costs no context (a page of presses)
            return await handler(event, data)
        bot: Bot = data["bot"]
        context = self.resolve_event_context(bot, data)
        if context is None:
            return await handler(event, data)
        async with self.events_isolation.lock(key=context.key):
            data["state"] = context
            return await handler(event, data)
