"""Erasing clients on request (152-FZ): every part's ``ClientErasure`` wired to the ledger, in
the order :class:`povtor.erasure.Erasure` runs them (the client history store last)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from povtor.erasure import Erasure
from povtor.ports import ClientErasure, ErasureLedger
from povtor.settings import Settings


def erasure_parts(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, ClientErasure]:
    """Part name -> its erasure; the names are the keys of each request's ``removed``."""
    from bot.erasure import BotErasure
    from crm_sync.history.erasure import HistoryErasure
    from outreach.queue import AttemptQueue
    from voice.erasure import VoiceErasure
    from voice.recording_archive import incoming_folder
    from voice.storage import storages_from_settings

    lease = timedelta(seconds=settings.outreach.lease_s)
    return {
        "outreach": AttemptQueue(sessions, worker_id="erasure", lease=lease),
        "bot": BotErasure(sessions),
        "voice": VoiceErasure(
            sessions,
            storages_from_settings(settings),
            incoming=incoming_folder(settings),
            cache=settings.recording_cache_dir,
        ),
        "history": HistoryErasure(sessions),  # last: the others read the phones through it
    }


def erasure_ledger(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> ErasureLedger:
    """The requests and the suppression list, with ``POVTOR_ERASURE_KEY`` when set."""
    from crm_sync.history.erasure_ledger import SqlErasureLedger

    key = settings.erasure_key.get_secret_value() if settings.erasure_key else None
    return SqlErasureLedger(sessions, key)


def build_erasure(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> Erasure:
    from crm_sync.history.store import SqlHistoryStore

    return Erasure(
        erasure_ledger(settings, sessions),
        SqlHistoryStore(sessions),
        erasure_parts(settings, sessions),
    )
