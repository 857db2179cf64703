"""aiogram's FSM middleware without its read per update: the chat's state is read only while a
handler or filter takes ``raw_state``; handlers still get ``state``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.types import Chat, Message, Update, User

from bot.fsm_storage import StateOnDemand, takes


class CountingStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get_state(self, key: StorageKey) -> str | None:
        self.reads += 1
        return await super().get_state(key)


def _dispatcher(router: Router) -> tuple[Dispatcher, CountingStorage]:
    storage = CountingStorage()
    dispatcher = Dispatcher(storage=storage, disable_fsm=True)
    dispatcher.fsm = StateOnDemand(dispatcher, dispatcher.fsm)
    dispatcher.update.outer_middleware(dispatcher.fsm)
    dispatcher.include_router(router)
    return dispatcher, storage


def _update(update_id: int, text: str) -> Update:
    user = User(id=7001, is_bot=False, first_name="Анна")
    chat = Chat(id=7001, type="private")
    message = Message(
        message_id=update_id, date=datetime.now(UTC), chat=chat, from_user=user, text=text
    )
    return Update(update_id=update_id, message=message)


async def test_no_read_of_the_state_when_no_handler_or_filter_takes_it() -> None:
    seen: list[Any] = []
    router = Router()

    @router.message(F.text)
    async def echo(message: Message, state: FSMContext) -> None:
        seen.append(await state.get_state())  # the handler reads when it asks
        await state.set_state("waiting")

    dispatcher, storage = _dispatcher(router)
    assert not takes(dispatcher, "raw_state")
    bot = Bot("42:TEST")
    await dispatcher.feed_update(bot, _update(1, "привет"))
    assert storage.reads == 1  # the handler's own read only
    await dispatcher.feed_update(bot, _update(2, "ещё"))
    assert seen == [None, "waiting"]
    assert storage.reads == 2
    await bot.session.close()


async def test_the_state_is_read_for_a_state_filter() -> None:
    seen: list[str] = []
    router = Router()

    @router.message(StateFilter("waiting"))
    async def waiting(message: Message) -> None:
        seen.append("waiting")

    @router.message(F.text)
    async def first(message: Message, state: FSMContext) -> None:
        seen.append("first")
        await state.set_state("waiting")

    dispatcher, storage = _dispatcher(router)
    assert takes(dispatcher, "raw_state")
    bot = Bot("42:TEST")
    await dispatcher.feed_update(bot, _update(1, "привет"))
    await dispatcher.feed_update(bot, _update(2, "ещё"))
    assert seen == ["first", "waiting"]
    assert storage.reads == 2  # once per update, as aiogram's own middleware
    await bot.session.close()


async def test_the_bots_routers_take_no_raw_state() -> None:
    from bot.handlers import build_routers

    assert not any(takes(router, "raw_state") for router in build_routers())


async def test_no_context_is_built_when_no_handler_takes_the_state() -> None:
    seen: list[BaseStorage] = []
    router = Router()

    @router.message(F.text)
    async def named(message: Message, fsm_storage: BaseStorage) -> None:
        seen.append(fsm_storage)

    dispatcher, storage = _dispatcher(router)
    assert not takes(dispatcher, "state")
    handed_state: list[bool] = []

    async def spy(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        handed_state.append("state" in data)
        return await handler(event, data)

    dispatcher.update.outer_middleware(spy)  # after the FSM middleware: sees what it handed
    bot = Bot("42:TEST")
    await dispatcher.feed_update(bot, _update(1, "привет"))
    assert seen == [storage]  # the storage is still handed on
    assert handed_state == [False]
    assert storage.reads == 0
    await bot.session.close()


async def test_a_context_is_built_when_events_are_isolated() -> None:
    seen: list[bool] = []
    router = Router()

    @router.message(F.text)
    async def plain(message: Message) -> None:
        seen.append(True)

    storage = CountingStorage()
    dispatcher = Dispatcher(
        storage=storage, disable_fsm=True, events_isolation=SimpleEventIsolation()
    )
    dispatcher.fsm = StateOnDemand(dispatcher, dispatcher.fsm)
    dispatcher.update.outer_middleware(dispatcher.fsm)
    dispatcher.include_router(router)
    handed_state: list[bool] = []

    async def spy(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        handed_state.append(isinstance(data.get("state"), FSMContext))
        return await handler(event, data)

    dispatcher.update.outer_middleware(spy)
    bot = Bot("42:TEST")
    await dispatcher.feed_update(bot, _update(1, "привет"))
    assert seen == [True]
    assert handed_state == [True]  # the chat's lock is taken, as by aiogram's middleware
    await bot.session.close()


async def test_the_bots_routers_take_no_state() -> None:
    from bot.handlers import build_routers

    assert not any(takes(router, "state") for router in build_routers())
