"""aiogram routers: turn updates into calls of the bot's flows. No business logic here."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message, TelegramObject, Update

from bot import alerts, answers, consent, linking, managers, survey
from bot.deps import BotDeps
from bot.keyboards import AlertCb, AnswerCb, ConsentCb, ScoreCb
from povtor.db import utcnow
from povtor.errors import PovtorError

log = logging.getLogger(__name__)


async def once_per_update(
    handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
    event: TelegramObject,
    data: dict[str, Any],
) -> Any:
    """Outer update middleware: each update id is handled once (redeliveries are skipped);
    a failed update is forgotten so that a redelivery is handled again."""
    deps: BotDeps = data["deps"]
    if not isinstance(event, Update):
        return await handler(event, data)
    update_id = event.update_id
    if not await deps.repo.claim_update(update_id) and update_id not in deps.retrying:
        log.debug("update %d seen before, skipped", update_id)
        return None
    try:
        result = await handler(event, data)
    except BaseException:
        deps.retrying.add(update_id)
        await deps.repo.release_update(update_id)
        raise
    deps.retrying.discard(update_id)
    return result


def split_presses(updates: list[Update]) -> tuple[list[tuple[int, answers.Press]], list[Update]]:
    """Reminder / win-back button presses (handled as a set) and everything else."""
    presses: list[tuple[int, answers.Press]] = []
    others: list[Update] = []
    for update in updates:
        query = update.callback_query
        if query is not None and query.data and query.data.startswith(f"{AnswerCb.__prefix__}:"):
            try:
                data = AnswerCb.unpack(query.data)
            except (ValueError, TypeError):
                others.append(update)
                continue
            press = answers.Press(query.id, _chat_id(query), data.msg, data.act)
            presses.append((update.update_id, press))
        else:
            others.append(update)
    return presses, others


async def handle_presses(deps: BotDeps, batch: list[tuple[int, answers.Press]]) -> None:
    """A page of button presses: claimed, recorded and answered together; a failed page is
    released so that a redelivery is handled again (the store writes are idempotent)."""
    claimed = await deps.repo.claim_updates([update_id for update_id, _ in batch])
    fresh = [(u, p) for u, p in batch if u in claimed or u in deps.retrying]
    if not fresh:
        return
    try:
        toasts = await answers.on_answers(deps, [p for _, p in fresh])
    except BaseException:
        deps.retrying.update(u for u, _ in fresh)
        await deps.repo.release_updates([u for u, _ in fresh])
        raise
    deps.retrying.difference_update(u for u, _ in fresh)
    results = await asyncio.gather(
        *(
            deps.bot.answer_callback_query(p.query_id, text=toast)
            for (_, p), toast in zip(fresh, toasts, strict=True)
        ),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, Exception):  # the press is recorded; only the toast is lost
            log.warning("callback answer failed: %s", result)


def build_router() -> Router:
    router = Router(name="povtor")
    router.message.filter(F.chat.type == "private")
    router.message.register(_start, CommandStart())
    router.message.register(_help, Command("help"))
    router.message.register(_stop, Command("stop"))
    router.message.register(_offers, Command("offers"))
    router.message.register(_complaint, Command("complaint"))
    router.message.register(_nps, Command("nps"))
    router.message.register(_tasks, Command("tasks"))
    router.message.register(_contact, F.contact)
    router.message.register(_voice, F.voice)
    router.message.register(_text, F.text)
    router.callback_query.register(_answer, AnswerCb.filter())
    router.callback_query.register(_score, ScoreCb.filter())
    router.callback_query.register(_alert, AlertCb.filter())
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
    text = deps.texts("help")
    if await deps.repo.manager_by_chat(message.chat.id) is not None:
        text += "\n\n" + deps.texts("help_manager")
    await deps.sender.send(message.chat.id, text, purpose="reply")


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
    if await deps.repo.manager_by_chat(message.chat.id) is None:
        await _reply(deps, message.chat.id, "manager_only")
        return
    text = await managers.nps_text(deps, utcnow())
    await deps.sender.send(message.chat.id, text, purpose="report")


async def _tasks(message: Message, deps: BotDeps) -> None:
    if await deps.repo.manager_by_chat(message.chat.id) is None:
        await _reply(deps, message.chat.id, "manager_only")
        return
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


async def _answer(query: CallbackQuery, callback_data: AnswerCb, deps: BotDeps) -> None:
    press = answers.Press(query.id, _chat_id(query), callback_data.msg, callback_data.act)
    [toast] = await answers.on_answers(deps, [press])
    await query.answer(toast)


async def _score(query: CallbackQuery, callback_data: ScoreCb, deps: BotDeps) -> None:
    chat_id = _chat_id(query)
    question = await deps.repo.get_outbox(callback_data.msg)
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


async def _alert(query: CallbackQuery, callback_data: AlertCb, deps: BotDeps) -> None:
    manager = await deps.repo.manager_by_chat(_chat_id(query))
    if manager is None or query.message is None:
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
