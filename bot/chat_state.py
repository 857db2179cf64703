"""What the bot waits for in each chat (survey score, reason, complaint), kept in aiogram's FSM
storage (:mod:`bot.fsm_storage`): the step is the FSM state, the rest its data. The flows that
also run outside an update (a survey sent by the outreach engine, the sweep) use this view of
the same records that handlers reach through ``FSMContext``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiogram.fsm.storage.base import StorageKey

from bot.fsm_storage import SqlStorage, Stored
from bot.records import ChatState, ChatStep

_FIELDS = ("client_id", "attempt_id", "message_id", "score")


def chat_key(bot_id: int, chat_id: int) -> StorageKey:
    """The FSM key of a private chat (its user is the chat), as aiogram builds it."""
    return StorageKey(bot_id=bot_id, chat_id=chat_id, user_id=chat_id)


def _state(stored: Stored) -> ChatState | None:
    if stored.state is None:
        return None
    data = dict(stored.data)
    fields: dict[str, Any] = {name: data.pop(name, None) for name in _FIELDS}
    return ChatState(
        chat_id=stored.chat_id,
        step=ChatStep(stored.state),
        data=data.pop("data", {}) or {},
        updated_at=stored.updated_at,
        **fields,
    )


class ChatStates:
    def __init__(self, storage: SqlStorage, bot_id: int) -> None:
        self._storage = storage
        self._bot_id = bot_id

    def _key(self, chat_id: int) -> StorageKey:
        return chat_key(self._bot_id, chat_id)

    async def get_state(self, chat_id: int) -> ChatState | None:
        stored = await self._storage.read(self._key(chat_id))
        return None if stored is None else _state(stored)

    async def set_state(self, state: ChatState) -> None:
        data: dict[str, Any] = {name: getattr(state, name) for name in _FIELDS}
        if state.data:
            data["data"] = state.data
        await self._storage.put(self._key(state.chat_id), state.step.value, data)

    async def clear_state(self, chat_id: int, *, message_id: int | None = None) -> None:
        """Forget the chat's state (only if it is about ``message_id``, when given)."""
        key = self._key(chat_id)
        if message_id is None:
            await self._storage.forget(key)
            return
        stored = await self._storage.read(key)
        if stored is not None and stored.data.get("message_id") == message_id:
            await self._storage.forget(key, unless_changed_since=stored.updated_at)

    async def stale_states(self, step: ChatStep, before: datetime) -> Sequence[ChatState]:
        found = [_state(s) for s in await self._storage.stale(step.value, before)]
        return [s for s in found if s is not None]
