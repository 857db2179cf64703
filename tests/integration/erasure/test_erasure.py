"""Erasing a client on request (152-FZ): everything of it goes from every part's tables and the
recording files from disk, other clients stay, an erasure stopped part-way is finished by a
rerun, and the next import neither re-creates nor plans the client."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.erasure_ledger import SqlErasureLedger
from crm_sync.history.store import SqlHistoryStore
from crm_sync.imports.headers import Kind
from crm_sync.imports.run import ImportOptions, import_file
from povtor.db import session_factory
from povtor.erasure import Erasure, ErasureIncomplete
from povtor.settings import Settings
from tests.integration.erasure.conftest import files_of, rows_of, seed_client
from tests.integration.imports.conftest import write_csv

ERASED_PHONE, KEPT_PHONE = "+79161234567", "+79167654321"


async def test_erasing_a_client_removes_it_from_every_part_and_its_recording_files(
    engine: AsyncEngine, settings: Settings, erasure: Erasure
) -> None:
    erased = await seed_client(engine, settings, "C1", ERASED_PHONE, 1001)
    kept = await seed_client(engine, settings, "C2", KEPT_PHONE, 1002)
    before = await rows_of(engine, kept)
    assert all(before.values()), before  # the query of every table finds the seeded rows
    assert await rows_of(engine, erased) == before
    assert files_of(erased) == [True, True, True]

    store = SqlHistoryStore(session_factory(engine))
    client = await store.get_client(erased.client_id)
    done = await erasure.run(await erasure.request(client, by="cli:test"))

    assert done.state == "done"
    assert done.finished_at is not None
    assert done.error is None
    assert list(done.removed) == ["outreach", "bot", "voice", "history"]
    assert done.removed["voice"] == {"calls": 1, "recordings": 1, "files": 3, "transcripts": 1}
    assert done.removed["bot"] == {
        "presses": 1,
        "messages": 2,
        "links": 1,
        "chat_states": 1,
        "alerts": 1,
    }
    assert done.removed["history"]["clients"] == 1
    assert done.removed["history"]["tasks"] == 2  # its own and the unknown contact's
    assert done.removed["outreach"]["attempts"] == 1
    assert set((await rows_of(engine, erased)).values()) == {0}
    assert files_of(erased) == [False, False, False]
    assert await rows_of(engine, kept) == before
    assert files_of(kept) == [True, True, True]


async def test_the_record_of_an_erasure_holds_no_personal_data(
    engine: AsyncEngine, settings: Settings, erasure: Erasure
) -> None:
    erased = await seed_client(engine, settings, "C1", ERASED_PHONE, 1001)
    client = await SqlHistoryStore(session_factory(engine)).get_client(erased.client_id)
    await erasure.run(await erasure.request(client, by="cli:test"))
    async with engine.connect() as conn:
        stored = [
            str(tuple(row))
            for table in ("erasure_requests", "erasure_suppressions", "erasure_keys")
            for row in await conn.execute(text(f"SELECT * FROM {table}"))
        ]
    assert stored
    for secret in ("9161234567", "C1", "Клиент", "1001"):
        assert not any(secret in row for row in stored), secret


async def test_an_erasure_stopped_part_way_is_left_pending_and_finished_by_a_rerun(
    engine: AsyncEngine, settings: Settings, erasure: Erasure
) -> None:
    erased = await seed_client(engine, settings, "C1", ERASED_PHONE, 1001)
    blocked = erased.recording  # something that is no file stands where the recording is
    blocked.unlink()
    blocked.mkdir()
    (blocked / "x").write_bytes(b"")
    client = await SqlHistoryStore(session_factory(engine)).get_client(erased.client_id)
    request = await erasure.request(client, by="cli:test")

    with pytest.raises(ErasureIncomplete) as stopped:
        await erasure.run(request)
    assert stopped.value.part == "voice"
    (pending,) = await erasure.ledger.pending()
    assert pending.id == request.id
    assert pending.state == "pending"
    assert pending.tries == 1
    assert list(pending.removed) == ["outreach", "bot"]  # confirmed before the failure
    assert pending.error is not None
    assert pending.error.startswith("voice: StorageError")
    left = await rows_of(engine, erased)
    assert left["clients"] == 1
    assert left["calls"] == 1
    assert left["bot_outbox"] == 0

    shutil.rmtree(blocked)  # the operator clears the way; the next run finishes
    (done,) = await erasure.resume()
    assert done.id == request.id
    assert done.state == "done"
    assert list(done.removed) == ["outreach", "bot", "voice", "history"]
    assert set((await rows_of(engine, erased)).values()) == {0}
    assert await erasure.ledger.pending() == []


async def test_an_erased_client_is_skipped_by_the_next_import_and_not_planned(
    engine: AsyncEngine, settings: Settings, erasure: Erasure, tmp_path
) -> None:
    erased = await seed_client(engine, settings, "C1", ERASED_PHONE, 1001)
    store = SqlHistoryStore(session_factory(engine))
    await erasure.run(await erasure.request(await store.get_client(erased.client_id), by="t"))
    ledger = SqlErasureLedger(session_factory(engine))
    clients = write_csv(
        tmp_path / "clients.csv",
        [
            ["Код клиента", "ФИО", "Телефон"],
            ["C1", "Тот же", "89990000001"],  # the same code, another phone
            ["C9", "Другой код", "8 916 123-45-67"],  # the same phone, another code
            ["C3", "Новый", "89160000003"],
        ],
    )
    orders = write_csv(
        tmp_path / "orders.csv",
        [
            ["Номер заказа", "Код клиента", "Дата", "Сумма"],
            ["O1", "C1", "01.02.2026", "100"],
            ["O3", "C3", "01.02.2026", "100"],
        ],
    )
    options = ImportOptions(erased=await ledger.suppression_list())
    summary = await import_file(engine, Kind.CLIENTS, clients, options)
    order_summary = await import_file(engine, Kind.ORDERS, orders, options)

    assert (summary.created, summary.rejected, summary.erased) == (1, 0, 2)
    assert summary.as_json()["erased"] == 2
    assert (order_summary.created, order_summary.rejected, order_summary.erased) == (1, 0, 1)
    assert await store.find_client("C1") is None
    assert await store.find_client("C9") is None
    assert await store.find_client_by_phone(ERASED_PHONE) is None
    assert (await store.find_client("C3")) is not None


async def test_the_erasure_tables_are_what_the_migration_made(engine: AsyncEngine) -> None:
    from tests.integration.schema import schema_drift

    names = ("erasure_requests", "erasure_suppressions", "erasure_keys")
    assert await schema_drift(engine, *names) == []


async def test_a_changed_erasure_key_is_refused_not_silently_matching_nothing(
    engine: AsyncEngine,
) -> None:
    from povtor.errors import ConfigError

    sessions = session_factory(engine)
    assert await SqlErasureLedger(sessions, "first key").suppression_key() == b"first key"
    assert await SqlErasureLedger(sessions, "first key").suppression_key() == b"first key"
    with pytest.raises(ConfigError, match="POVTOR_ERASURE_KEY"):
        await SqlErasureLedger(sessions, "another key").suppression_key()
    with pytest.raises(ConfigError):  # unset now: the generated one never existed
        await SqlErasureLedger(sessions).suppression_key()


async def test_without_a_configured_key_one_is_generated_once_and_shared(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    first = await SqlErasureLedger(sessions).suppression_key()
    assert len(first) == 64
    assert await SqlErasureLedger(sessions).suppression_key() == first  # another worker
