"""BotService: builds the bot once and runs it (long polling or webhook) until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError, TelegramServerError
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.answers import Press
from bot.channel import TelegramChannel
from bot.delivery import DeliveryMiddleware, Sender
from bot.deps import BotDeps
from bot.handlers import build_router, handle_presses, once_per_update, split_presses
from bot.ratelimit import RateLimiter
from bot.repo import BotRepo
from bot.survey import flush_unanswered
from bot.texts import Texts
from povtor.db import create_engine, session_factory
from povtor.errors import ConfigError
from povtor.ports import HistoryStore, OutcomeSink, Reports, Transcriber
from povtor.settings import Settings

log = logging.getLogger(__name__)
ALLOWED_UPDATES = ["message", "callback_query"]
T = TypeVar("T")


def build_bot(settings: Settings, limiter: RateLimiter) -> Bot:
    tg = settings.telegram
    if tg.bot_token is None:
        raise ConfigError("POVTOR_TELEGRAM_BOT_TOKEN is not set")
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(tg.api_base) if tg.api_base else None,
    )
    session.middleware(
        DeliveryMiddleware(limiter, retries=tg.send_retries, backoff_s=tg.retry_backoff_s)
    )
    return Bot(tg.bot_token.get_secret_value(), session=session)


class BotService:
    """The Telegram bot of one worker. ``channel`` is handed to the outreach engine; the
    service itself (``name``, ``run(stop)``) to the composition root's task group."""

    name = "telegram-bot"

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        reports: Reports,
        outcome_sink: OutcomeSink,
        transcriber: Transcriber | None = None,
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        tg = settings.telegram
        self._settings = settings
        self._engine: AsyncEngine | None = None
        if sessions is None:
            self._engine = create_engine(settings.db_url)
            sessions = session_factory(self._engine)
        self.limiter = RateLimiter(tg.global_rate, tg.per_chat_rate, margin_s=tg.rate_margin_s)
        self.bot = build_bot(settings, self.limiter)
        single_writer = sessions.kw["bind"].dialect.name == "sqlite"
        repo = BotRepo(sessions)
        self.deps = BotDeps(
            settings=settings,
            bot=self.bot,
            store=store,
            repo=repo,
            sender=Sender(self.bot, repo, store),
            texts=Texts(tg.texts_path, company=tg.company_name),
            outcome_sink=outcome_sink,
            reports=reports,
            transcriber=transcriber,
            secret_key=settings.resolved_secret_key(),
            link_ttl=timedelta(days=tg.link_ttl_days),
        )
        self.dispatcher = Dispatcher()
        self.dispatcher["deps"] = self.deps
        self.dispatcher.update.outer_middleware(once_per_update)
        self.dispatcher.include_router(build_router())
        self.channel = TelegramChannel(self.deps)
        self._slots = asyncio.Semaphore(tg.max_concurrent_updates)
        # pages of presses write a lot: on SQLite (one writer) one page at a time
        self._press_pages = asyncio.Semaphore(1 if single_writer else 4)

    async def handle(self, update: Update) -> None:
        """Handle one update (from polling, a webhook or a test); errors are logged, not raised."""
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception:
            log.exception("update %d failed", update.update_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then finish the updates in hand and close."""
        try:
            if self._settings.telegram.mode == "webhook":
                from bot.webhook import serve_webhook

                await serve_webhook(self, stop)
            else:
                await self.bot.delete_webhook(drop_pending_updates=False)
                await self.poll(stop)
        finally:
            await self.close()

    async def poll(self, stop: asyncio.Event) -> None:
        """Long polling; handlers run concurrently (bounded) and are drained on stop."""
        offset: int | None = None
        timeout = self._settings.telegram.polling_timeout_s
        failures = 0
        async with asyncio.TaskGroup() as group:
            group.create_task(self._sweep(stop))
            while not stop.is_set():
                try:
                    updates = await self._until_stopped(
                        self.bot.get_updates(
                            offset=offset,
                            timeout=timeout,
                            allowed_updates=ALLOWED_UPDATES,
                            request_timeout=timeout + 10,
                        ),
                        stop,
                    )
                except (TelegramNetworkError, TelegramServerError) as err:
                    failures += 1
                    log.warning("getUpdates failed (%s), retry %d", err, failures)
                    await self._wait(stop, min(0.5 * 2 ** min(failures, 6), 30.0))
                    continue
                if updates is None:
                    break
                failures = 0
                if updates:
                    offset = updates[-1].update_id + 1
                presses, others = split_presses(updates)
                if presses:  # a page of button presses is handled as one set
                    await self._slots.acquire()
                    group.create_task(self._handle_presses(presses))
                for update in others:
                    await self._slots.acquire()
                    group.create_task(self._handle_slot(update))

    async def _handle_presses(self, presses: list[tuple[int, Press]]) -> None:
        """Polling confirms a page as soon as the next one is asked for, so a page that fails
        (a lost database connection) is retried here; every write in it is idempotent."""
        try:
            async with self._press_pages:
                for attempt in range(1, 4):
                    try:
                        await handle_presses(self.deps, presses)
                        return
                    except Exception:
                        log.exception(
                            "a page of %d button presses failed (try %d)", len(presses), attempt
                        )
                        await asyncio.sleep(0.5 * attempt)
        finally:
            self._slots.release()

    async def _handle_slot(self, update: Update) -> None:
        try:
            await self.handle(update)
        finally:
            self._slots.release()

    async def _sweep(self, stop: asyncio.Event) -> None:
        """Keep scores whose follow-up question is never answered."""
        wait = timedelta(seconds=self._settings.telegram.nps_reason_wait_s)
        while not stop.is_set():
            try:
                await flush_unanswered(self.deps, wait)
            except Exception:  # the sweep must outlive a bad row or a lost connection
                log.exception("survey sweep failed")
            await self._wait(stop, min(wait.total_seconds(), 600.0))

    @staticmethod
    async def _wait(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    @staticmethod
    async def _until_stopped(coro: Awaitable[T], stop: asyncio.Event) -> T | None:
        task = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return None
        return task.result()

    async def close(self) -> None:
        await self.bot.session.close()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
