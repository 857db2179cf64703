"""aiogram routers: turn updates into calls of the bot's flows. No business logic here."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, CommandStart, Filter
from aiogram.types import CallbackQuery, ErrorEvent, Message, TelegramObject, Update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bot import alerts, answers, consent, linking, managers, survey
from bot.batching import Batch
from bot.deps import BotDeps
from bot.keyboards import AlertCb, AnswerCb, ConsentCb, ScoreCb
from bot.records import Manager
from povtor.db import utcnow
from povtor.errors import PovtorError

log = logging.getLogger(__name__)


class IsManager(Filter):
    """Passes the chats of active managers and hands the handler their ``manager``."""

    async def __call__(
        self, event: Message | CallbackQuery, deps: BotDeps
    ) -> bool | dict[str, Any]:
        chat_id = event.chat.id if isinstance(event, Message) else _chat_id(event)
        manager = await deps.managers.manager_by_chat(chat_id)
        return False if manager is None else {"manager": manager}


async def once_per_update(
    handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
    event: TelegramObject,
    data: dict[str, Any],
) -> Any:
    """Outer update middleware: each update id is handled once (redeliveries are skipped);
    a failed update is forgotten so that a redelivery is handled again. The claims of the
    updates in flight are written together (``claims``)."""
    if not isinstance(event, Update):
        return await handler(event, data)
    claims: Batch[int, bool] = data["claims"]
    deps: BotDeps = data["deps"]
    update_id = event.update_id
    if not await claims.submit(update_id) and update_id not in deps.retrying:
        log.debug("update %d seen before, skipped", update_id)
        return None
    try:
        result = await handler(event, data)
    except BaseException:
        deps.retrying.add(update_id)  # its claim may stand if the database went away
        await deps.updates.release_updates([update_id])
        raise
    deps.retrying.discard(update_id)
    return result


async def log_error(event: ErrorEvent) -> bool:
    """An update whose handling failed: logged with its traceback, never raised further
    (its id was released, so a redelivery is handled again). When the database is away the
    error goes on to the caller, which retries the update once the database answers (a polled
    update is not given again by Telegram)."""
    if database_away(event.exception):
        raise SkipHandler
    log.error("update %d failed", event.update.update_id, exc_info=event.exception)
    return True


def database_away(err: BaseException) -> bool:
    """The database (or the way to it) is away, not the update wrong: worth trying again."""
    if isinstance(err, OSError | OperationalError | InterfaceError):
        return True
    return isinstance(err, DBAPIError) and err.connection_invalidated


def claims_batch(deps: BotDeps, concurrent: int) -> Batch[int, bool]:
    """Update ids claimed in one statement per batch: True for each seen the first time."""

    async def claim(update_ids: list[int]) -> list[bool]:
        fresh = await deps.updates.claim_updates(update_ids)
        return [u in fresh for u in update_ids]

    return Batch("update claims", claim, concurrent=concurrent)


def answers_batch(deps: BotDeps, concurrent: int) -> Batch[answers.Press, str]:
    """Reminder and win-back presses recorded as a set (a page after a mass reminder); a
    failed batch is tried again, since every write in it is idempotent."""

    async def record(presses: list[answers.Press]) -> list[str]:
        return await answers.on_answers(deps, presses)

    return Batch("button presses", record, concurrent=concurrent, tries=3)


def build_router() -> Router:
    """The managers' router first (its handlers pass managers only), then everyone's: a
    manager command from anyone else falls through to the refusal."""
    root = Router(name="povtor")
    root.message.filter(F.chat.type == "private")
    root.include_routers(_managers_router(), _clients_router())
    return root


def _managers_router() -> Router:
    # the role filter sits on each handler, after the cheap filters, so that a client's
    # press or text costs no manager lookup
    router = Router(name="managers")
    manager = IsManager()
    router.message.register(_help_manager, Command("help"), manager)
    router.message.register(_nps, Command("nps"), manager)
    router.message.register(_tasks, Command("tasks"), manager)
    router.callback_query.register(_alert, AlertCb.filter(), manager)
    return router


def _clients_router() -> Router:
    router = Router(name="clients")
    router.message.register(_start, CommandStart())
    router.message.register(_help, Command("help"))
    router.message.register(_stop, Command("stop"))
    router.message.register(_offers, Command("offers"))
    router.message.register(_complaint, Command("complaint"))
    router.message.register(_manager_only, Command("nps", "tasks"))
    router.message.register(_contact, F.contact)
    router.message.register(_voice, F.voice)
    router.message.register(_text, F.text)
    router.callback_query.register(_answer, AnswerCb.filter())
    router.callback_query.register(_score, ScoreCb.filter())
    router.callback_query.register(_manager_only_button, AlertCb.filter())
    router.callback_query.register(_consent, ConsentCb.filter())
    return router


def _user_name(message: Message) -> str:
    user = message.from_user
    return user.full_name if user else ""


async def _reply(deps: BotDeps, chat_id: int, key: str, /, **values: Any) -> None:
    await deps.sender.send(chat_id, deps.texts(key, **values), purpose="reply")


async def _start(message: Message, command: CommandObject, deps: BotDeps) -> None:
    await linking.start(deps, message.chat.id, _user_name(message), command.args)


async def _help(message: Message, deps: BotDeps) -> None:
    await deps.sender.send(message.chat.id, deps.texts("help"), purpose="reply")


async def _help_manager(message: Message, deps: BotDeps) -> None:
    text = deps.texts("help") + "\n\n" + deps.texts("help_manager")
    await deps.sender.send(message.chat.id, text, purpose="reply")


async def _manager_only(message: Message, deps: BotDeps) -> None:
    await _reply(deps, message.chat.id, "manager_only")


async def _manager_only_button(query: CallbackQuery, deps: BotDeps) -> None:
    await query.answer(deps.texts("manager_only"))


async def _stop(message: Message, deps: BotDeps) -> None:
    client = await deps.store.find_client_by_chat(message.chat.id)
    await survey.stop(deps, client, message.chat.id)


async def _offers(message: Message, deps: BotDeps) -> None:
    client = await deps.store.find_client_by_chat(message.chat.id)
    if client is None:
        await _reply(deps, message.chat.id, "not_linked")
        return
    await consent.ask(deps, client, message.chat.id)


async def _consent(query: CallbackQuery, callback_data: ConsentCb, deps: BotDeps) -> None:
    client = await deps.store.find_client_by_chat(_chat_id(query))
    if client is None:
        await query.answer(deps.texts("not_linked"))
        return
    await query.answer(await consent.answer(deps, client, callback_data.yes))


async def _complaint(message: Message, deps: BotDeps) -> None:
    client = await deps.store.find_client_by_chat(message.chat.id)
    if client is None:
        await linking.start(deps, message.chat.id, _user_name(message), None)
        return
    await survey.start_complaint(deps, client, message.chat.id)


async def _nps(message: Message, deps: BotDeps) -> None:
    text = await managers.nps_text(deps, utcnow())
    await deps.sender.send(message.chat.id, text, purpose="report")


async def _tasks(message: Message, deps: BotDeps) -> None:
    await deps.sender.send(message.chat.id, await managers.tasks_text(deps), purpose="report")


async def _contact(message: Message, deps: BotDeps) -> None:
    assert message.contact is not None  # the filter guarantees it
    sender_id = message.from_user.id if message.from_user else None
    await linking.contact(
        deps,
        message.chat.id,
        sender_id or 0,
        message.contact.user_id,
        message.contact.phone_number,
    )


async def _text(message: Message, deps: BotDeps) -> None:
    client = await deps.store.find_client_by_chat(message.chat.id)
    if client is None:
        await _reply(deps, message.chat.id, "not_linked")
        return
    await survey.on_text(deps, client, message.chat.id, message.message_id, message.text or "")


async def _voice(message: Message, deps: BotDeps, bot: Bot) -> None:
    assert message.voice is not None
    client = await deps.store.find_client_by_chat(message.chat.id)
    if client is None:
        await _reply(deps, message.chat.id, "not_linked")
        return
    if not await survey.waits_for_answer(deps, message.chat.id) or deps.transcriber is None:
        await _reply(deps, message.chat.id, "voice_not_supported")
        return
    with tempfile.TemporaryDirectory(prefix="povtor-voice-") as folder:
        path = Path(folder) / f"{message.voice.file_unique_id}.ogg"
        try:
            await bot.download(message.voice, destination=path)
            transcript = await deps.transcriber.transcribe(path)
        except (PovtorError, OSError) as err:
            log.warning("voice message not transcribed: %s", err)
            await _reply(deps, message.chat.id, "voice_failed")
            return
    if not transcript.text.strip():
        await _reply(deps, message.chat.id, "voice_failed")
        return
    await survey.on_text(deps, client, message.chat.id, message.message_id, transcript.text)


def _chat_id(query: CallbackQuery) -> int:
    return query.message.chat.id if query.message is not None else query.from_user.id


async def _answer(
    query: CallbackQuery, callback_data: AnswerCb, presses: Batch[answers.Press, str]
) -> None:
    press = answers.Press(query.id, _chat_id(query), callback_data.msg, callback_data.act)
    toast = await presses.submit(press)
    try:
        await query.answer(toast)
    except TelegramAPIError as err:  # the press is recorded; only the toast is lost
        log.warning("callback answer failed: %s", err)


async def _score(query: CallbackQuery, callback_data: ScoreCb, deps: BotDeps) -> None:
    chat_id = _chat_id(query)
    question = await deps.outbox.get_outbox(callback_data.msg)
    client = await deps.store.find_client_by_chat(chat_id)
    if (
        question is None
        or client is None
        or question.chat_id != chat_id
        or not 0 <= callback_data.score <= 10
    ):
        await query.answer(deps.texts("already_answered"))
        return
    if not await survey.on_score(deps, client, question, callback_data.score, query.id):
        await query.answer(deps.texts("already_answered"))
        return
    await query.answer(deps.texts("nps_scored", score=callback_data.score))


async def _alert(
    query: CallbackQuery, callback_data: AlertCb, deps: BotDeps, manager: Manager
) -> None:
    if query.message is None:
        await query.answer(deps.texts("manager_only"))
        return
    toast = await alerts.on_alert_button(
        deps,
        manager,
        callback_data.alert,
        callback_data.act,
        _chat_id(query),
        query.message.message_id,
    )
    await query.answer(toast)
