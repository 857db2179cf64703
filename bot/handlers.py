"""aiogram routers: turn updates into calls of the bot's flows. No business logic here.

Handlers, filters and middlewares take what they need by name from the dispatcher's workflow
data (aiogram's dependency injection; :class:`bot.service.BotService` registers it once):
``store`` (the client history), ``texts``, ``sender``, ``outbox``, ``reports``, ``alert_store``,
``managers`` (the managers' records), ``transcriber`` (None without one), the flows ``survey``,
``linking``, ``alerts``, and for each update ``claims``, ``handled``, ``updates``, ``retrying``,
``presses``.
"""

from __future__ import annotations

import asyncio
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

from bot import consent
from bot.alert_store import AlertStore
from bot.alerts import Alerts
from bot.answers import Answers, Press
from bot.batching import Batch, leave_page
from bot.delivery import Sender
from bot.keyboards import AlertCb, AnswerCb, ConsentCb, ScoreCb
from bot.linking import Linking
from bot.manager_store import ManagerStore
from bot.managers import nps_text, tasks_text
from bot.outbox_store import OutboxStore
from bot.records import Manager
from bot.survey import Survey
from bot.texts import Texts
from bot.update_log import Claim, UpdateBusy, UpdateLog
from povtor.db import utcnow
from povtor.errors import PovtorError
from povtor.ports import HistoryStore, Reports, Transcriber

log = logging.getLogger(__name__)
MANAGER_COMMANDS = ("help", "nps", "tasks")


class IsManager(Filter):
    """Passes the chats of active managers and hands the handler their ``manager``."""

    async def __call__(
        self, event: Message | CallbackQuery, managers: ManagerStore
    ) -> bool | dict[str, Any]:
        chat_id = event.chat.id if isinstance(event, Message) else _chat_id(event)
        manager = await managers.manager_by_chat(chat_id)
        return False if manager is None else {"manager": manager}


async def once_per_update(
    handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
    event: TelegramObject,
    data: dict[str, Any],
) -> Any:
    """Outer update middleware: each update id is handled once (see :mod:`bot.update_log`):
    claimed before (``claims``: the claims of the updates in flight written together), marked
    handled after (``handled``, likewise); a redelivery of a handled update is skipped, of one in
    flight elsewhere raises :class:`UpdateBusy` (the poller tries it again later) or, for a
    webhook post (``wait_while_busy``), waits for that try to end. A failed update is
    forgotten so that a redelivery is handled again. ``retrying``: the updates this worker
    claimed and failed to handle (the database went away), handled again by its own retry
    although their claim may still stand."""
    if not isinstance(event, Update):
        return await handler(event, data)
    claims: Batch[int, Claim] = data["claims"]
    retrying: set[int] = data["retrying"]
    update_id = event.update_id
    claim = await claims.submit(update_id)
    if claim is Claim.BUSY and data.get("wait_while_busy"):
        claim = await _while_busy(claims, update_id)
    if update_id not in retrying:
        if claim is Claim.DONE:
            log.debug("update %d seen before, skipped", update_id)
            return None
        if claim is Claim.BUSY:
            raise UpdateBusy(update_id)
    try:
        result = await handler(event, data)
    except BaseException:
        retrying.add(update_id)  # its claim may stand if the database went away
        updates: UpdateLog = data["updates"]
        await updates.release_updates([update_id])
        raise
    retrying.discard(update_id)
    handled: Batch[int, None] = data["handled"]
    try:
        await handled.submit(update_id)
    except Exception as err:  # handled all the same: only a redelivery after a crash redoes it
        log.warning("update %d handled, not marked so: %s", update_id, type(err).__name__)
    return result


async def _while_busy(claims: Batch[int, Claim], update_id: int) -> Claim:
    """A webhook post of an update in flight elsewhere (a retry racing the first try) is
    answered once that try has ended: Telegram is told the update is done only when it is, and
    a retry that only failed would be posted again and again meanwhile."""
    delay = 0.05
    claim = Claim.BUSY
    while claim is Claim.BUSY:  # ends: the claim is handled, released, or stale
        await asyncio.sleep(delay)  # backoff between reads of the claim
        delay = min(delay * 2, 1.0)
        claim = await claims.submit(update_id)
    return claim


async def log_error(event: ErrorEvent) -> bool:
    """An update whose handling failed: logged with its traceback, never raised further
    (its id was released, so a redelivery is handled again). When the database is away, or the
    update is in flight elsewhere, the error goes on to the caller, which tries the update again
    (the poller itself; a webhook request fails, so Telegram posts it again)."""
    if database_away(event.exception) or isinstance(event.exception, UpdateBusy):
        raise SkipHandler
    log.error("update %d failed", event.update.update_id, exc_info=event.exception)
    return True


def database_away(err: BaseException) -> bool:
    """The database (or the way to it) is away, not the update wrong: worth trying again."""
    if isinstance(err, OSError | OperationalError | InterfaceError):
        return True
    return isinstance(err, DBAPIError) and err.connection_invalidated


def claims_batch(updates: UpdateLog, concurrent: int) -> Batch[int, Claim]:
    """Update ids claimed in one statement per batch: what each is to this run."""

    async def claim(update_ids: list[int]) -> list[Claim]:
        found = await updates.claim_updates(update_ids)
        return [found[u] for u in update_ids]

    return Batch("update claims", claim, concurrent=concurrent)


def handled_batch(updates: UpdateLog, concurrent: int) -> Batch[int, None]:
    """Update ids marked handled in one statement per batch (idempotent, so tried again)."""

    async def mark(update_ids: list[int]) -> list[None]:
        await updates.mark_handled(update_ids)
        return [None] * len(update_ids)

    return Batch("handled updates", mark, concurrent=concurrent, tries=3)


def answers_batch(answers: Answers, concurrent: int) -> Batch[Press, str]:
    """Reminder and win-back presses recorded as a set (a page after a mass reminder); a
    failed batch is tried again, since every write in it is idempotent."""
    return Batch("button presses", answers.record, concurrent=concurrent, tries=3)


def build_routers() -> list[Router]:
    """The managers' router first (it passes managers only), then everyone's, each included in
    the dispatcher itself (a router around them would be one more level for every update to
    pass): a manager command from anyone else falls through to the refusal. Both take messages
    from private chats only."""
    return [_managers_router(), _clients_router()]


_PRIVATE = F.chat.type == "private"


def _managers_router() -> Router:
    # the role filter on the router comes after the cheap command and button filters, so that
    # a client's press or text costs no manager lookup
    router = Router(name="managers")
    router.message.filter(_PRIVATE, Command(*MANAGER_COMMANDS), IsManager())
    router.callback_query.filter(AlertCb.filter(), IsManager())
    router.message.register(_help_manager, Command("help"))
    router.message.register(_nps, Command("nps"))
    router.message.register(_tasks, Command("tasks"))
    router.callback_query.register(_alert)
    return router


def _clients_router() -> Router:
    router = Router(name="clients")
    router.message.filter(_PRIVATE)
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


async def _reply(sender: Sender, texts: Texts, chat_id: int, key: str) -> None:
    await sender.send(chat_id, texts(key), purpose="reply")


async def _start(message: Message, command: CommandObject, linking: Linking) -> None:
    await linking.start(message.chat.id, _user_name(message), command.args)


async def _help(message: Message, sender: Sender, texts: Texts) -> None:
    await sender.send(message.chat.id, texts("help"), purpose="reply")


async def _help_manager(message: Message, sender: Sender, texts: Texts) -> None:
    text = texts("help") + "\n\n" + texts("help_manager")
    await sender.send(message.chat.id, text, purpose="reply")


async def _manager_only(message: Message, sender: Sender, texts: Texts) -> None:
    await _reply(sender, texts, message.chat.id, "manager_only")


async def _manager_only_button(query: CallbackQuery, texts: Texts) -> None:
    await query.answer(texts("manager_only"))


async def _stop(message: Message, store: HistoryStore, survey: Survey) -> None:
    client = await store.find_client_by_chat(message.chat.id)
    await survey.stop(client, message.chat.id)


async def _offers(message: Message, store: HistoryStore, sender: Sender, texts: Texts) -> None:
    client = await store.find_client_by_chat(message.chat.id)
    if client is None:
        await _reply(sender, texts, message.chat.id, "not_linked")
        return
    await consent.ask(sender, texts, client, message.chat.id)


async def _consent(
    query: CallbackQuery, callback_data: ConsentCb, store: HistoryStore, texts: Texts
) -> None:
    client = await store.find_client_by_chat(_chat_id(query))
    if client is None:
        await query.answer(texts("not_linked"))
        return
    await query.answer(await consent.answer(store, texts, client, callback_data.yes))


async def _complaint(
    message: Message, store: HistoryStore, linking: Linking, survey: Survey
) -> None:
    client = await store.find_client_by_chat(message.chat.id)
    if client is None:
        await linking.start(message.chat.id, _user_name(message), None)
        return
    await survey.start_complaint(client, message.chat.id)


async def _nps(
    message: Message, reports: Reports, alert_store: AlertStore, sender: Sender, texts: Texts
) -> None:
    text = await nps_text(reports, alert_store, texts, utcnow())
    await sender.send(message.chat.id, text, purpose="report")


async def _tasks(message: Message, store: HistoryStore, sender: Sender, texts: Texts) -> None:
    await sender.send(message.chat.id, await tasks_text(store, texts), purpose="report")


async def _contact(message: Message, linking: Linking) -> None:
    assert message.contact is not None  # the filter guarantees it
    sender_id = message.from_user.id if message.from_user else None
    await linking.contact(
        message.chat.id,
        sender_id or 0,
        message.contact.user_id,
        message.contact.phone_number,
    )


async def _text(
    message: Message, store: HistoryStore, survey: Survey, sender: Sender, texts: Texts
) -> None:
    client = await store.find_client_by_chat(message.chat.id)
    if client is None:
        await _reply(sender, texts, message.chat.id, "not_linked")
        return
    await survey.on_text(client, message.chat.id, message.message_id, message.text or "")


async def _voice(
    message: Message,
    bot: Bot,
    store: HistoryStore,
    survey: Survey,
    transcriber: Transcriber | None,
    sender: Sender,
    texts: Texts,
) -> None:
    assert message.voice is not None
    chat_id = message.chat.id
    client = await store.find_client_by_chat(chat_id)
    if client is None:
        await _reply(sender, texts, chat_id, "not_linked")
        return
    if not await survey.waits_for_answer(chat_id) or transcriber is None:
        await _reply(sender, texts, chat_id, "voice_not_supported")
        return
    await leave_page()  # the download and the transcription hold no other update's writes
    with tempfile.TemporaryDirectory(prefix="povtor-voice-") as folder:
        path = Path(folder) / f"{message.voice.file_unique_id}.ogg"
        try:
            await bot.download(message.voice, destination=path)
            transcript = await transcriber.transcribe(path)
        except (PovtorError, OSError) as err:
            log.warning("voice message not transcribed: %s", err)
            await _reply(sender, texts, chat_id, "voice_failed")
            return
    if not transcript.text.strip():
        await _reply(sender, texts, chat_id, "voice_failed")
        return
    await survey.on_text(client, chat_id, message.message_id, transcript.text)


def _chat_id(query: CallbackQuery) -> int:
    return query.message.chat.id if query.message is not None else query.from_user.id


async def _answer(
    query: CallbackQuery, callback_data: AnswerCb, presses: Batch[Press, str]
) -> None:
    press = Press(query.id, _chat_id(query), callback_data.msg, callback_data.act)
    toast = await presses.submit(press)
    try:
        await query.answer(toast)
    except TelegramAPIError as err:  # the press is recorded; only the toast is lost
        log.warning("callback answer failed: %s", err)


async def _score(
    query: CallbackQuery,
    callback_data: ScoreCb,
    outbox: OutboxStore,
    store: HistoryStore,
    survey: Survey,
    texts: Texts,
) -> None:
    chat_id = _chat_id(query)
    question = await outbox.get_outbox(callback_data.msg)
    client = await store.find_client_by_chat(chat_id)
    if (
        question is None
        or client is None
        or question.chat_id != chat_id
        or not 0 <= callback_data.score <= 10
    ):
        await query.answer(texts("already_answered"))
        return
    if not await survey.on_score(client, question, callback_data.score, query.id):
        await query.answer(texts("already_answered"))
        return
    await query.answer(texts("nps_scored", score=callback_data.score))


async def _alert(
    query: CallbackQuery, callback_data: AlertCb, manager: Manager, alerts: Alerts, texts: Texts
) -> None:
    if query.message is None:
        await query.answer(texts("manager_only"))
        return
    toast = await alerts.on_alert_button(
        manager,
        callback_data.alert,
        callback_data.act,
        _chat_id(query),
        query.message.message_id,
    )
    await query.answer(toast)
