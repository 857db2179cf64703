"""BotService: builds the bot once and runs it (long polling or webhook) until told to stop.

Every update, polled or posted to the webhook, goes through aiogram's dispatcher and the
routers of :mod:`bot.handlers`. Polling fetches the pages itself (``getUpdates``) rather than
through ``Dispatcher.start_polling``, for three things aiogram's reader does not do: only the
worker holding the polling lease polls, a failure is said once per change of the link (aiogram
logs every retry), and a refused token stops polling instead of being retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.alert_store import AlertStore
from bot.alerts import Alerts
from bot.answers import Answers
from bot.batching import Page
from bot.channel import TelegramChannel
from bot.chat_state import ChatStates
from bot.delivery import DeliveryMiddleware, Sender
from bot.fsm_storage import SqlStorage, StateOnDemand
from bot.handlers import (
    answers_batch,
    build_routers,
    claims_batch,
    database_away,
    handled_batch,
    log_error,
    once_per_update,
)
from bot.lease import Lease, link_key
from bot.link import LINK_ERRORS, TOKEN_REFUSED, UNREACHABLE, TelegramLink
from bot.link_nonces import LinkNonces
from bot.linking import Linking
from bot.manager_store import ManagerStore
from bot.outbox_store import OutboxStore
from bot.press_store import PressStore
from bot.ratelimit import RateLimiter
from bot.session import api_host, build_session
from bot.session import build_bot as _build_bot
from bot.survey import Survey
from bot.texts import Texts
from bot.update_log import UpdateBusy, UpdateLog
from bot.webhook import serve_webhook
from povtor.db import utcnow
from povtor.health import HealthReporter
from povtor.lifecycle import wait_or_stop
from povtor.ports import HistoryStore, OutcomeSink, Reports, Transcriber
from povtor.settings import Settings

log = logging.getLogger(__name__)
ALLOWED_UPDATES = ["message", "callback_query"]
# Telegram keeps an update it was not told of for 24 hours: a claim handled longer ago than this
# stops no redelivery (webhook retries included)
CLAIMS_KEPT = timedelta(days=2)
T = TypeVar("T")


def build_bot(settings: Settings, limiter: RateLimiter, link: TelegramLink | None = None) -> Bot:
    """The worker's bot (see :mod:`bot.session`) with the delivery middleware on its session."""
    tg = settings.telegram
    session = build_session(tg)
    session.middleware(
        DeliveryMiddleware(
            limiter, retries=tg.send_retries, backoff_s=tg.retry_backoff_s, link=link
        )
    )
    return _build_bot(tg, session)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
        sessions: async_sessionmaker[AsyncSession],
        health: HealthReporter | None = None,
        worker_id: str | None = None,
    ) -> None:
        tg = settings.telegram
        self.settings = settings
        self._closed = False
        self.limiter = RateLimiter(tg.global_rate, tg.per_chat_rate, margin_s=tg.rate_margin_s)
        token = tg.bot_token.get_secret_value() if tg.bot_token is not None else ""
        self.link = TelegramLink(
            api_host(tg),
            health,
            token=token,
            backoff_s=tg.outage_backoff_s,
            backoff_max_s=tg.outage_backoff_max_s,
        )
        self.bot = build_bot(settings, self.limiter, self.link)
        self._sessions = sessions
        owner = worker_id or _owner()
        lease_for = timedelta(seconds=tg.poll_lease_s)
        self.polling_lease = Lease(sessions, "polling", owner, lease_for)
        self.polling = False  # this worker holds the polling lease now
        single_writer = sessions.kw["bind"].dialect.name == "sqlite"
        self.fsm = SqlStorage(sessions)  # aiogram's FSM, in the database for every worker
        outbox = OutboxStore(sessions)
        managers = ManagerStore(sessions)
        states = ChatStates(self.fsm, self.bot.id)
        # this run's claims: a worker restarted with the same name is another run
        updates = UpdateLog(sessions, f"{secrets.token_hex(4)}@{owner}"[:100], lease_for)
        self.updates = updates
        retrying: set[int] = set()
        presses = PressStore(sessions)
        alert_store = AlertStore(sessions)
        texts = Texts(tg.texts_path, company=tg.company_name)
        sender = Sender(self.bot, outbox, store, link=self.link)
        alerts = Alerts(store, alert_store, managers, sender, texts, self.bot)
        self.survey = Survey(
            store, states, presses, outbox, outcome_sink, alerts, sender, texts, self.bot
        )
        self.linking = Linking(
            store,
            managers,
            LinkNonces(sessions),
            sender,
            texts,
            region=settings.default_region,
            secret_key=settings.resolved_secret_key(),
            link_ttl=timedelta(days=tg.link_ttl_days),
        )
        answers = Answers(outbox, presses, store, outcome_sink, texts)
        # a page of updates writes a lot: on SQLite (one writer) one batch at a time
        batches = 1 if single_writer else 4
        # what handlers, filters and middlewares take by name (aiogram's injection): see
        # bot.handlers
        self.dispatcher = Dispatcher(
            storage=self.fsm,
            disable_fsm=True,  # aiogram's FSM middleware, without its read per update: below
            store=store,
            texts=texts,
            sender=sender,
            outbox=outbox,
            reports=reports,
            alert_store=alert_store,
            managers=managers,
            transcriber=transcriber,
            survey=self.survey,
            linking=self.linking,
            alerts=alerts,
            updates=updates,
            retrying=retrying,
            claims=claims_batch(updates, batches),
            handled=handled_batch(updates, batches),
            presses=answers_batch(answers, batches),
        )
        fsm = StateOnDemand(self.dispatcher, self.dispatcher.fsm)
        self.dispatcher.fsm = fsm
        self.dispatcher.update.outer_middleware(fsm)
        self.dispatcher.update.outer_middleware(once_per_update)
        self.dispatcher.errors.register(log_error)
        self.dispatcher.include_routers(*build_routers())
        self.channel = TelegramChannel(store, states, self.survey, sender, texts)
        self._slots = asyncio.Semaphore(tg.max_concurrent_updates)

    async def handle(self, update: Update) -> None:
        """Handle one update through the dispatcher; errors are logged (by the dispatcher's
        error handler, or here for a failure outside the routers), not raised."""
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception:
            log.exception("update %d failed", update.update_id)

    async def probe(self, timeout_s: int = 5) -> None:
        """One getMe, so that the link's state is known before anything is sent; Telegram's
        failures are recorded on the link, never raised."""
        try:
            await self.bot.get_me(request_timeout=timeout_s)
        except LINK_ERRORS as err:
            self.link.failed(err)
        else:
            self.link.succeeded()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then finish the updates in hand and close. Telegram
        being away never ends this: the link is watched and polling retried with backoff."""
        try:
            if self.settings.secret_key is None:  # every worker signs links with one key
                self.linking.secret_key = await link_key(self.settings, self._sessions)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._sweep(stop))
                group.create_task(self._watch_link(stop))
                if self.settings.telegram.mode == "webhook":
                    group.create_task(serve_webhook(self, stop))
                else:
                    group.create_task(self._poll_with_lease(stop))
        finally:
            await self.close()

    async def _watch_link(self, stop: asyncio.Event) -> None:
        """While Telegram cannot be reached, ask it (getMe) with capped backoff, so that a
        worker that only sends learns it is back. A refused token is not retried."""
        while not stop.is_set():
            if self.link.state == UNREACHABLE:
                await self.wait(stop, self.link.next_delay())
                if self.link.state == UNREACHABLE and not stop.is_set():
                    await self.probe(timeout_s=10)
            else:
                await self.wait(stop, 1.0)

    async def _poll_with_lease(self, stop: asyncio.Event) -> None:
        """Telegram serves getUpdates to one caller: the worker holding the polling lease
        polls; the others only send and take over when the holder stops renewing."""
        lease = self.polling_lease
        period = lease.duration.total_seconds() / 3
        waiting_logged = False
        while not stop.is_set() and not self.link.token_refused:
            try:
                held = await lease.acquire()
            except Exception:  # the database is away: try again, nothing is lost
                log.exception("the polling lease could not be taken")
                held = False
            if not held:
                if not waiting_logged:
                    log.info("another worker polls Telegram; this one sends only")
                    waiting_logged = True
                await self.wait(stop, period)
                continue
            waiting_logged = False
            log.info("this worker polls Telegram for updates (lease %s)", lease.owner)
            halt = asyncio.Event()
            self.polling = True
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._keep_lease(stop, halt))
                    await self.poll(halt)
                    halt.set()
            finally:
                self.polling = False
                if stop.is_set() or self.link.token_refused:
                    try:
                        await lease.release()
                    except Exception as err:  # it runs out by itself; the next poller waits
                        log.warning("the polling lease was not let go: %s", type(err).__name__)
        await stop.wait()

    async def _keep_lease(self, stop: asyncio.Event, halt: asyncio.Event) -> None:
        """Renew the polling lease; set ``halt`` on stop or when the lease is lost."""
        period = self.polling_lease.duration.total_seconds() / 3
        while not halt.is_set():
            await self._wait_either(stop, halt, period)
            if stop.is_set():
                halt.set()
                return
            if halt.is_set():
                return
            try:
                held = await self.polling_lease.acquire()
            except Exception:  # kept while it lasts; lost if the database stays away
                log.exception("the polling lease could not be renewed")
                continue
            if not held:
                log.warning("the polling lease passed to another worker; this one sends only")
                halt.set()

    async def poll(self, stop: asyncio.Event) -> None:
        """Long polling until ``stop`` (or a refused token); the updates of a page are handled
        concurrently (bounded), and the next page is asked for only once they all are (a slow
        one that left the page: :meth:`_until_confirmable`): asking for it confirms this one to
        Telegram, which never gives it again. A worker killed with a
        page in hand thus leaves it to Telegram, which gives it to the next poller (see
        :mod:`bot.update_log` for the claims it finds). Telegram's failures are retried with
        capped backoff and said once per change by the link."""
        offset: int | None = None
        timeout = self.settings.telegram.polling_timeout_s
        webhook_cleared = False
        async with asyncio.TaskGroup() as pages:  # a page still handled when the next comes
            while not stop.is_set():
                try:
                    if not webhook_cleared:  # a webhook left set would make getUpdates fail
                        await self.bot.delete_webhook(drop_pending_updates=False)
                        webhook_cleared = True
                    updates = await self._until_stopped(
                        self.bot.get_updates(
                            offset=offset,
                            timeout=timeout,
                            allowed_updates=ALLOWED_UPDATES,
                            request_timeout=timeout + 10,
                        ),
                        stop,
                    )
                except LINK_ERRORS as err:
                    if self.link.failed(err).state == TOKEN_REFUSED:
                        break
                    await self.wait(stop, self.link.next_delay())
                    continue
                if updates is None:
                    break
                self.link.succeeded()
                page = Page()
                handling = pages.create_task(self._handle_page(page, updates, stop))
                await self._until_confirmable(page, handling)
                if updates:
                    offset = updates[-1].update_id + 1

    async def _until_confirmable(self, page: Page, handling: asyncio.Task[None]) -> None:
        """Wait until the page may be confirmed: every update of it handled. An update that
        left the page for slow work of its own (a voice answer being transcribed) is waited
        for ``page_wait_s`` at most once the others are done; then it goes on beside the next
        page (a worker killed meanwhile loses that one update, said in the log)."""
        settled = asyncio.ensure_future(page.settled.wait())
        try:
            await asyncio.wait({handling, settled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            settled.cancel()
        if handling.done():
            return
        wait = self.settings.telegram.page_wait_s
        await asyncio.wait({handling}, timeout=wait)
        if not handling.done():
            log.warning("an update still handled after %.0f s: the next page goes on", wait)

    async def _handle_page(self, page: Page, updates: list[Update], stop: asyncio.Event) -> None:
        """Handle a page's updates concurrently, so that its writes are a few sets; returns
        when every one is handled (or left to Telegram on ``stop``)."""
        async with asyncio.TaskGroup() as group:
            for update in updates:
                if self._slots.locked():  # the updates started may need their sets first
                    await page.pause()
                    await self._slots.acquire()
                    page.resume()
                else:
                    await self._slots.acquire()  # a free slot: taken without waiting
                page.add()
                group.create_task(self._handle_slot(update, page, stop))
            await page.complete()

    async def _handle_slot(self, update: Update, page: Page, stop: asyncio.Event) -> None:
        """A polled update: while the database is away or the update is in flight elsewhere it
        is tried again here (a handler's own error is logged once, as by ``handle``)."""
        try:
            async with page.member():
                await self._until_stored(
                    lambda: self.dispatcher.feed_update(self.bot, update),
                    f"update {update.update_id}",
                    stop,
                )
        finally:
            self._slots.release()

    async def _until_stored(
        self, work: Callable[[], Awaitable[object]], what: str, stop: asyncio.Event
    ) -> None:
        """Run ``work``; while it fails because the database is away (a connection refused or
        cut) or the update is in flight elsewhere, try again with capped backoff, saying it
        once. Polling waits meanwhile (nothing can be written; Telegram keeps an update a day);
        on ``stop`` the update is left unconfirmed, for Telegram to give again."""
        delay = 0.5
        told = False
        while True:
            try:
                await work()
                if told:
                    log.info("%s handled at last", what)
                return
            except Exception as err:
                busy = isinstance(err, UpdateBusy)
                if not busy and not database_away(err):
                    log.exception("%s failed", what)
                    return
                if not told:
                    why = "is in flight elsewhere" if busy else "waits for the database"
                    log.warning("%s %s: %s", what, why, type(err).__name__)
                    told = True
            await self.wait(stop, delay)
            if stop.is_set():
                log.warning("%s left to Telegram to give again", what)
                return
            delay = min(delay * 2, 5.0)

    async def _sweep(self, stop: asyncio.Event) -> None:
        """Keep scores whose follow-up question is never answered; drop the claims of updates
        handled longer ago than Telegram gives an update again."""
        wait = timedelta(seconds=self.settings.telegram.nps_reason_wait_s)
        while not stop.is_set():
            try:
                await self.survey.flush_unanswered(wait)
                await self.updates.forget_handled(utcnow() - CLAIMS_KEPT)
            except Exception:  # the sweep must outlive a bad row or a lost connection
                log.exception("survey sweep failed")
            await self.wait(stop, min(wait.total_seconds(), 600.0))

    @staticmethod
    async def wait(stop: asyncio.Event, seconds: float) -> None:
        await wait_or_stop(stop, seconds)

    @staticmethod
    async def _wait_either(first: asyncio.Event, second: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

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
        """Close the HTTP session; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self.bot.session.close()
