"""A client with something in every part (store, outreach, bot, voice with recording files),
written through each part's own code, and the erasure wired as the application wires it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.erasure import build_erasure
from bot.alert_store import AlertStore
from bot.outbox_store import OutboxStore
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from outreach.queue import AttemptQueue, NewAttempt
from povtor.db import session_factory
from povtor.domain import ChannelKind, EventKind, Purpose
from povtor.erasure import Erasure
from povtor.ports import NewEvent, NewNpsResponse, NewTask, Segment, Transcript
from povtor.settings import Settings
from voice.call_store import CallStore
from voice.recording import RecordingInfo
from voice.recording_archive import archive_recording, incoming_folder
from voice.storage import LocalStorage
from voice.transcripts import TranscriptStore

NOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seeded:
    client_id: int
    external_id: str
    phone: str
    chat_id: int
    recording: Path  # the archived file
    cached: Path  # the dashboard's fetched copy
    leftover: Path  # a file left in the incoming folder


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """The data folder ``run_povtor`` gives the command when run in ``tmp_path``."""
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


@pytest.fixture
def erasure(settings: Settings, engine: AsyncEngine) -> Erasure:
    return build_erasure(settings, session_factory(engine))


async def seed_client(
    engine: AsyncEngine, settings: Settings, ext: str, phone: str, chat_id: int
) -> Seeded:
    sessions = session_factory(engine)
    store = SqlHistoryStore(sessions)
    client = await store.create_client(
        ClientInput(external_id=ext, name=f"Клиент {ext}", phones=(phone,))
    )
    await store.link_telegram(client.id, chat_id)
    await store.add_order(
        OrderInput(f"{ext}-o1", ext, NOW - timedelta(days=40), Decimal("1200.00"))
    )
    await store.append_event(NewEvent(client.id, EventKind.MESSAGE_IN, "Привет"))
    await store.record_nps(NewNpsResponse(client.id, 3, ChannelKind.CALL, reason_text="долго"))
    await store.create_task(NewTask(client.id, "detractor", "Перезвонить", NOW))
    await store.create_task(  # a contact shared in Telegram that matched nobody at the time
        NewTask(None, "unknown_contact", "Контакт", NOW, note=f"Telegram chat 1, телефон {phone}")
    )
    queue = AttemptQueue(sessions, worker_id="test", lease=timedelta(seconds=60))
    await queue.add(
        [NewAttempt(client.id, Purpose.NPS, ChannelKind.CALL, NOW, f"{ext}:nps", "test")], NOW
    )
    outbox = await OutboxStore(sessions).add_outbox(
        chat_id=chat_id, purpose="nps", text="Оцените заказ", client_id=client.id
    )
    alert, _ = await AlertStore(sessions).create_alert(
        client_id=client.id, kind="detractor", text=f"{ext}: 3", dedup_key=f"a:{ext}", task_id=None
    )
    await OutboxStore(sessions).add_outbox(  # the managers' alert names the client
        chat_id=555, purpose="alert", text=f"{ext}: 3", dedup_key=f"alert:{alert.id}:1"
    )
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO bot_link_tokens (nonce, client_id, chat_id, used_at)"
                " VALUES (:n, :c, :chat, :at)"
            ),
            {"n": f"n{ext}", "c": client.id, "chat": chat_id, "at": NOW},
        )
        await conn.execute(
            text(
                "INSERT INTO bot_presses (outbox_id, slot, action, chat_id, callback_query_id,"
                " pressed_at) VALUES (:o, 'answer', 'score', :chat, :q, :at)"
            ),
            {"o": outbox.id, "chat": chat_id, "q": f"q{ext}", "at": NOW},
        )
        await conn.execute(
            text(
                "INSERT INTO bot_fsm (key, chat_id, state, updated_at)"
                " VALUES (:k, :chat, 'survey', :at)"
            ),
            {"k": f"fsm:{chat_id}", "chat": chat_id, "at": NOW},
        )
    calls = CallStore(sessions)
    call = await calls.create_call(
        f"call-{ext}", trunk="t", target=f"sip:{phone}@trunk", worker_id="w", client_id=client.id
    )
    incoming = incoming_folder(settings)
    incoming.mkdir(parents=True, exist_ok=True)
    live = incoming / f"{call.uuid}.wav.tmp"
    body = f"RIFF recording of {ext}".encode()
    live.write_bytes(body)
    sha = hashlib.sha256(body).hexdigest()
    info = RecordingInfo(live, sha, 1.0, len(body), call.uuid)
    storage = LocalStorage(settings.recordings_dir)
    record = await archive_recording(calls, storage, info, call)
    await TranscriptStore(engine).save_done(
        sha, Transcript(str(live), 1.0, (Segment(0.0, 1.0, "client", f"долго везли {ext}"),))
    )
    cached = settings.recording_cache_dir / f"{sha}.wav"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(body)
    leftover = incoming / f"{call.uuid}.wav"
    leftover.write_bytes(body)
    return Seeded(client.id, ext, phone, chat_id, storage.path_of(record.uri), cached, leftover)


# every table that holds something of a client, and how to find its rows
CLIENT_ROWS = {
    "clients": "SELECT count(*) FROM clients WHERE id = :c",
    "client_phones": "SELECT count(*) FROM client_phones WHERE client_id = :c",
    "orders": "SELECT count(*) FROM orders WHERE client_id = :c",
    "events": "SELECT count(*) FROM events WHERE client_id = :c",
    "nps_responses": "SELECT count(*) FROM nps_responses WHERE client_id = :c",
    "tasks": "SELECT count(*) FROM tasks WHERE client_id = :c OR note LIKE :phone",
    "client_stats": "SELECT count(*) FROM client_stats WHERE client_id = :c",
    "outreach_attempts": "SELECT count(*) FROM outreach_attempts WHERE client_id = :c",
    "bot_outbox": "SELECT count(*) FROM bot_outbox WHERE client_id = :c OR chat_id = :chat"
    " OR text LIKE :ext",
    "bot_presses": "SELECT count(*) FROM bot_presses WHERE chat_id = :chat",
    "bot_link_tokens": "SELECT count(*) FROM bot_link_tokens WHERE client_id = :c",
    "bot_fsm": "SELECT count(*) FROM bot_fsm WHERE chat_id = :chat",
    "bot_alerts": "SELECT count(*) FROM bot_alerts WHERE client_id = :c",
    "calls": "SELECT count(*) FROM calls WHERE client_id = :c OR target LIKE :phone",
    "recordings": "SELECT count(*) FROM recordings r JOIN calls c ON c.id = r.call_id"
    " WHERE c.target LIKE :phone",
    "transcripts": "SELECT count(*) FROM transcripts WHERE text LIKE '%' || :words || '%'",
}


async def rows_of(engine: AsyncEngine, seeded: Seeded) -> dict[str, int]:
    params = {
        "c": seeded.client_id,
        "chat": seeded.chat_id,
        "phone": f"%{seeded.phone}%",
        "ext": f"{seeded.external_id}:%",
        "words": f"везли {seeded.external_id}",
    }
    async with engine.connect() as conn:
        return {
            name: int((await conn.execute(text(sql), params)).scalar_one())
            for name, sql in CLIENT_ROWS.items()
        }


def files_of(seeded: Seeded) -> list[bool]:
    return [p.exists() for p in (seeded.recording, seeded.cached, seeded.leftover)]
