"""Getting messages out for real: rate limits, 429/5xx/network retries, stored statuses.

Why the outbox does not run on the durable-work mechanism (:mod:`povtor.work`): it is a record
of sends, not a queue drained by a worker. A message is sent by the execution that makes it
(a contact attempt, a reply, an alert), which already holds that attempt's lease; the outbox row
makes the send at most once (a row found started after a crash is not sent again: Telegram cannot
say whether it arrived). Retrying later is the contact policy's decision (the fall-back call),
not the outbox's, so it has no due time, lease or backoff to share. Its failed messages are its
dead letters, listed for managers with those of the other queues.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    GetUpdates,
    Response,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove

from bot.link import LINK_ERRORS, TelegramLink
from bot.outbox_store import OutboxStore
from bot.ratelimit import RateLimiter
from bot.records import OutboxMessage, SendStatus
from povtor.domain import EventKind
from povtor.ports import HistoryStore, NewEvent

log = logging.getLogger(__name__)

_MESSAGE_METHODS = (SendMessage, EditMessageText, EditMessageReplyMarkup)
_SUMMARY_CHARS = 300
_UNREACHABLE_HINTS = ("chat not found", "user is deactivated", "peer_id_invalid")
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


class DeliveryMiddleware(BaseRequestMiddleware):
    """Every API call of the bot: message calls wait for the shared limiter; 429s pause all
    senders for ``retry_after`` and are retried; 5xx and network errors retry with backoff."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_throttle_s: float = 900.0,
        link: TelegramLink | None = None,
    ) -> None:
        self._limiter = limiter
        self._link = link
        self._retries = retries
        self._backoff_s = backoff_s
        self._max_throttle_s = max_throttle_s  # a 429 storm is waited out this long

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, GetUpdates | GetMe):  # polling and probes have their own backoff
            return await make_request(bot, method)  # type: ignore[arg-type]
        limited = isinstance(method, _MESSAGE_METHODS)
        chat_id = getattr(method, "chat_id", None)
        failures = 0
        throttled = 0.0
        while True:
            try:
                if limited:
                    async with self._limiter.slot(chat_id if isinstance(chat_id, int) else None):
                        return await make_request(bot, method)
                return await make_request(bot, method)
            except TelegramRetryAfter as err:
                throttled += err.retry_after
                if throttled > self._max_throttle_s:
                    raise
                if self._link is not None:  # DEGRADED on the board, said once per storm
                    self._link.throttled(err.retry_after)
                else:
                    log.warning(
                        "Telegram asked to wait %ss (%s)", err.retry_after, method.__api_method__
                    )
                self._limiter.pause(err.retry_after)
                if not limited:
                    await asyncio.sleep(err.retry_after)
            except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as err:
                # ClientDecodeError: a proxy's HTML error page (502/504) instead of JSON
                failures += 1
                link = self._link
                if failures > self._retries or (link is not None and not link.usable):
                    raise  # Telegram is known to be away: the link says so once, no retries
                delay = min(self._backoff_s * 2 ** (failures - 1), 30.0)
                log.warning(
                    "%s failed (%s), retry %d in %.1fs",
                    method.__api_method__,
                    err,
                    failures,
                    delay,
                )
                await asyncio.sleep(delay)


_IN_DOUBT = "in flight when its worker stopped: may have been sent, not sent again"


class Sender:
    """Sends a message and keeps its status in the outbox; 403 marks the client unreachable."""

    def __init__(
        self,
        bot: Bot,
        outbox: OutboxStore,
        store: HistoryStore,
        *,
        link: TelegramLink | None = None,
    ) -> None:
        self._bot = bot
        self._outbox = outbox
        self._store = store
        self._link = link

    async def send(
        self,
        chat_id: int,
        text: str,
        *,
        purpose: str,
        markup: Markup | None = None,
        client_id: int | None = None,
        attempt_id: int | None = None,
        dedup_key: str | None = None,
        make_markup: Any = None,
        before_send: Callable[[OutboxMessage], Awaitable[None]] | None = None,
    ) -> OutboxMessage:
        """Queue, send and record. ``make_markup(outbox_id)`` builds buttons that name the message.

        With a ``dedup_key`` a message that was already sent is not sent again; ``before_send``
        runs once the message has its outbox id, before it can reach the chat."""
        queued = await self._outbox.add_outbox(
            chat_id=chat_id,
            purpose=purpose,
            text=text,
            client_id=client_id,
            attempt_id=attempt_id,
            dedup_key=dedup_key,
        )
        if queued.status is not SendStatus.QUEUED:
            return queued
        if queued.resumed and queued.tries > 0:
            # An earlier execution started sending it and stopped (a killed worker) before
            # recording the answer: it may have reached the chat, and Telegram cannot say.
            # Sending again could ask the client twice; at most once, the fall-back call
            # covers a loss. (Queued but never started: sent now as usual.)
            log.warning(
                "outbox #%s was in flight when its worker stopped: not sent again", queued.id
            )
            status, message_id = SendStatus.SENT, None
            error: str | None = _IN_DOUBT
        else:
            if make_markup is not None:
                markup = make_markup(queued.id)
            if before_send is not None:
                await before_send(queued)
            await self._outbox.start_send(queued.id)  # from here a crash leaves it in doubt
            status, message_id, error = await self._deliver(chat_id, text, markup)
        tries = queued.tries + 1
        marked = await self._outbox.mark_outbox(
            queued.id, status, message_id=message_id, error=error, tries=tries
        )
        if status is SendStatus.UNREACHABLE and client_id is not None:
            await self._store.set_telegram_reachable(client_id, False)
        if status is SendStatus.SENT and client_id is not None and attempt_id is not None:
            # a reminder, survey or win-back reaches the client's timeline (and NPS "asked")
            await self._store.append_event(
                NewEvent(
                    client_id=client_id,
                    kind=EventKind.MESSAGE_OUT,
                    summary=f"Telegram: {text[:_SUMMARY_CHARS]}",
                    ref=f"message:{queued.id}",
                    data={"channel": "telegram", "purpose": purpose, "attempt_id": attempt_id},
                    dedup_key=f"telegram:out:{queued.id}",
                )
            )
        return marked

    async def _deliver(
        self, chat_id: int, text: str, markup: Markup | None
    ) -> tuple[SendStatus, int | None, str | None]:
        try:
            sent = await self._bot.send_message(chat_id, text, reply_markup=markup)
        except TelegramForbiddenError as err:
            log.info("chat …%s unreachable: %s", str(chat_id)[-2:], err.message)
            return SendStatus.UNREACHABLE, None, err.message[:300]
        except TelegramBadRequest as err:
            if any(h in err.message.lower() for h in _UNREACHABLE_HINTS):
                return SendStatus.UNREACHABLE, None, err.message[:300]
            log.error("Telegram refused a message: %s", err.message)
            return SendStatus.FAILED, None, err.message[:300]
        except LINK_ERRORS as err:  # Telegram's side: the link logs it once per change
            if self._link is None:
                log.error("message not delivered after retries: %s", err)
                return SendStatus.FAILED, None, str(err)[:300]
            return SendStatus.FAILED, None, self._link.failed(err).reason[:300]
        except TelegramRetryAfter as err:
            log.error("message not delivered after retries: %s", err)
            return SendStatus.FAILED, None, str(err)[:300]
        if self._link is not None:
            self._link.succeeded(sent=True)
        return SendStatus.SENT, sent.message_id, None
