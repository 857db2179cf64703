"""Importing clients into the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from crm_sync.history.tables import ImportRunRow
from crm_sync.imports.headers import Kind
from crm_sync.imports.run import ImportOptions, import_file
from povtor.errors import InvalidInput
from tests.integration.imports.conftest import read_rejects, write_csv

HEADER = ["Код клиента", "ФИО", "Телефон", "E-mail", "Часовой пояс"]


async def test_clients_are_created_then_unchanged_on_reimport(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    path = write_csv(
        files / "clients.csv",
        [
            HEADER,
            ["C1", "Иван Петров", "8 (916) 123-45-67, +7 903 111 22 33", "ivan@example.ru", ""],
            ["C2", "Мария Смирнова", "+7 926 000 11 22", "", "МСК+2"],
        ],
    )
    first = await import_file(engine, Kind.CLIENTS, path)
    again = await import_file(engine, Kind.CLIENTS, path)

    assert (first.created, first.updated, first.unchanged, first.rejected) == (2, 0, 0, 0)
    assert first.rejects_file is None
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    ivan = await store.find_client("C1")
    assert ivan is not None
    assert ivan.phones == ("+79161234567", "+79031112233")
    assert ivan.email == "ivan@example.ru"
    assert ivan.timezone == "Europe/Moscow"
    maria = await store.find_client("C2")
    assert maria is not None
    assert maria.timezone == "Asia/Yekaterinburg"


async def test_existing_external_id_updates_only_given_fields(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    write_csv(files / "a.csv", [HEADER, ["C1", "Иван", "89161234567", "ivan@example.ru", ""]])
    await import_file(engine, Kind.CLIENTS, files / "a.csv")
    write_csv(files / "b.csv", [["client_id", "phone"], ["C1", "+7 903 111 22 33"]])

    summary = await import_file(engine, Kind.CLIENTS, files / "b.csv")

    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 0)
    client = await store.find_client("C1")
    assert client is not None
    assert client.phones == ("+79031112233",)
    assert client.name == "Иван"  # no name column: kept
    assert client.email == "ivan@example.ru"


async def test_bad_rows_go_to_rejects_with_row_number_and_the_rest_is_imported(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    path = write_csv(
        files / "clients.csv",
        [
            HEADER,
            ["C1", "Иван", "89161234567", "", ""],
            ["C2", "Пётр", "garbage", "", ""],
            ["", "Без кода", "89161234568", "", ""],
            ["C4", "Ольга", "89161234569", "не почта", ""],
            ["C5", "Анна", "89161234570", "", "Марс"],
            ["C6", "Олег", "9161234571", "", ""],
        ],
    )
    summary = await import_file(engine, Kind.CLIENTS, path)

    assert (summary.created, summary.rejected) == (3, 3)
    assert summary.rejects_file == path.with_name("clients.csv.rejects.csv")
    rejects = read_rejects(path.with_name("clients.csv.rejects.csv"))
    assert [(r[0], r[2]) for r in rejects] == [("3", "C2"), ("4", ""), ("6", "C5")]
    assert "garbage" in rejects[0][1]
    assert "не указан код клиента" in rejects[1][1]
    assert "часовой пояс" in rejects[2][1]
    assert await store.find_client("C6") is not None
    # A bad e-mail keeps the client without it, and the notes file says so.
    olga = await store.find_client("C4")
    assert olga is not None
    assert (olga.name, olga.email, olga.phones) == ("Ольга", None, ("+79161234569",))
    assert (summary.noted, summary.notes_file) == (1, path.with_name("clients.csv.notes.csv"))
    notes = read_rejects(path.with_name("clients.csv.notes.csv"))
    assert [(n[0], "e-mail" in n[1], "без e-mail" in n[1]) for n in notes] == [("5", True, True)]


async def test_duplicate_ids_in_one_file_last_row_wins(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    path = write_csv(
        files / "dup.csv",
        [
            HEADER,
            ["C1", "Иван", "89161234567", "", ""],
            ["C1", "Иван", "89161234567", "", ""],
            ["C1", "Иван Петрович", "89031112233", "", ""],
        ],
    )
    summary = await import_file(engine, Kind.CLIENTS, path, ImportOptions(batch_size=2))

    assert (summary.created, summary.unchanged, summary.updated) == (1, 1, 1)
    client = await store.find_client("C1")
    assert client is not None
    assert (client.name, client.phones) == ("Иван Петрович", ("+79031112233",))


async def test_cp1251_file_without_bom_and_comma_delimiter(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    path = write_csv(
        files / "1c.csv",
        [["Контрагент", "Код", "Мобильный телефон", "Рабочий телефон", "Город"]]
        + [[f"Ёлкин Семён {i}", f"K{i}", f"8916123{i:04d}", "", "Новосибирск"] for i in range(50)],
        encoding="cp1251",
        delimiter=",",
    )
    summary = await import_file(engine, Kind.CLIENTS, path)

    assert summary.created == 50
    client = await store.find_client("K7")
    assert client is not None
    assert client.name == "Ёлкин Семён 7"
    assert client.timezone == "Asia/Novosibirsk"


async def test_phones_from_several_columns_are_merged(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    path = write_csv(
        files / "bitrix.csv",
        [
            ["ID", "Имя", "Фамилия", "Мобильный телефон", "Рабочий телефон", "Ответственный"],
            ["17", "Иван", "Петров", "+7 916 123-45-67", "8 (495) 123-45-67", "Смирнова А."],
        ],
    )
    await import_file(engine, Kind.CLIENTS, path)
    client = await store.find_client("17")
    assert client is not None
    assert client.name == "Петров Иван"
    assert client.phones == ("+79161234567", "+74951234567")


async def test_map_option_names_an_unknown_column(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    path = write_csv(files / "odd.csv", [["Номер карты", "Кто"], ["77", "Анна"]])
    with pytest.raises(InvalidInput, match="no column for external_id"):
        await import_file(engine, Kind.CLIENTS, path)
    options = ImportOptions(overrides={"номер карты": "external_id", "кто": "name"})
    summary = await import_file(engine, Kind.CLIENTS, path, options)
    assert summary.created == 1
    client = await store.find_client("77")
    assert client is not None
    assert client.name == "Анна"


async def test_each_run_is_recorded(engine: AsyncEngine, files: Path) -> None:
    path = write_csv(files / "c.csv", [HEADER, ["C1", "Иван", "garbage", "", ""]])
    await import_file(engine, Kind.CLIENTS, path)
    async with engine.connect() as conn:
        row = (await conn.execute(select(ImportRunRow.__table__))).mappings().one()
        assert row["kind"] == "clients"
        assert row["rejected"] == 1
        assert row["finished_at"] is not None
        assert row["rejects_file"].endswith("c.csv.rejects.csv")
        count = await conn.scalar(select(func.count()).select_from(ImportRunRow.__table__))
    assert count == 1
