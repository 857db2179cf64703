"""What every handler and flow of the bot needs, built once by the service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from aiogram import Bot

from bot.alert_store import AlertStore
from bot.chat_state import ChatStates
from bot.delivery import Sender
from bot.link_nonces import LinkNonces
from bot.manager_store import ManagerStore
from bot.outbox_store import OutboxStore
from bot.press_store import PressStore
from bot.texts import Texts
from bot.update_log import UpdateLog
from povtor.ports import HistoryStore, OutcomeSink, Reports, Transcriber
from povtor.settings import Settings

T = TypeVar("T")


@dataclass(slots=True)
class BotDeps:
    settings: Settings
    bot: Bot
    store: HistoryStore
    updates: UpdateLog
    nonces: LinkNonces
    managers: ManagerStore
    states: ChatStates
    outbox: OutboxStore
    presses: PressStore
    alerts: AlertStore
    sender: Sender
    texts: Texts
    outcome_sink: OutcomeSink
    reports: Reports
    transcriber: Transcriber | None = None
    secret_key: str = ""
    link_ttl: timedelta = field(default_factory=lambda: timedelta(days=30))
    # updates this worker claimed and failed to handle (the database went away): its own
    # retry handles them although their claim may still stand
    retrying: set[int] = field(default_factory=set)

    async def cpu(self, func: Callable[..., T], *args: Any) -> T:
        """Run pure CPU work (NLU, lemmatisation) off the event loop."""
        return await asyncio.to_thread(func, *args)
