"""Damaged rows in otherwise good files: each is one rejected row with its reason, the rest of
the file is imported, nothing silently disappears."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from crm_sync.history.tables import ClientRow
from crm_sync.imports.headers import Kind
from crm_sync.imports.records import ClientRecord
from crm_sync.imports.run import ImportOptions, import_file
from crm_sync.imports.upsert import upsert_clients, write_isolated
from tests.integration.imports.conftest import last_json, read_rejects, run_povtor, write_csv

HEADER = "Код клиента;ФИО;Телефон;E-mail\n"


def _row(i: int) -> str:
    return f"C{i};Клиент {i};+7916{i:07d};c{i}@example.ru\n"


async def _client_ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.scalars(select(ClientRow.external_id))).all())


async def test_an_unclosed_quote_rejects_its_row_and_the_rest_of_the_file_is_imported(
    engine: AsyncEngine, files: Path
) -> None:
    lines = [_row(i) for i in range(1, 301)]
    lines[49] = 'C50;"Клиент 50;+79160000050;c50@example.ru\n'  # the quote never closes
    path = files / "clients.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")

    summary = await import_file(engine, Kind.CLIENTS, path)

    assert (summary.created, summary.rejected) == (299, 1)
    assert await _client_ids(engine) == {f"C{i}" for i in range(1, 301)} - {"C50"}
    [reject] = read_rejects(path.with_name("clients.csv.rejects.csv"))
    assert reject[0] == "51"
    assert "кавычка не закрыта" in reject[1]
    assert reject[2].startswith('C50;"Клиент 50')  # the line as it was, to fix by hand


async def test_a_quote_closed_by_a_stray_one_rows_later_loses_none_of_the_rows_between(
    engine: AsyncEngine, files: Path
) -> None:
    lines = [_row(i) for i in range(1, 21)]
    lines[4] = 'C5;"Клиент 5;+79160000005;c5@example.ru\n'
    lines[8] = 'C9;Клиент 9";+79160000009;c9@example.ru\n'  # closes the quote of row C5
    path = files / "clients.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")

    summary = await import_file(engine, Kind.CLIENTS, path)

    assert await _client_ids(engine) == {f"C{i}" for i in range(1, 21)} - {"C5"}
    assert (summary.created, summary.rejected) == (19, 1)


async def test_a_quoted_cell_with_line_breaks_is_still_one_good_row(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    path = files / "clients.csv"
    path.write_text(
        HEADER + 'C1;"Иванов\nИван\nИванович";+79161234567;i@example.ru\n' + _row(2),
        encoding="utf-8",
    )
    summary = await import_file(engine, Kind.CLIENTS, path)
    assert (summary.created, summary.rejected) == (2, 0)
    client = await store.find_client("C1")
    assert client is not None
    assert client.name == "Иванов\nИван\nИванович"


async def test_a_nul_byte_rejects_one_row_and_keeps_the_rows_after_it(
    engine: AsyncEngine, files: Path
) -> None:
    lines = [_row(i) for i in range(1, 3001)]  # > 64 KiB: past the binary-file sniffing
    lines[2499] = "C2500;Клиент\x00 2500;+79160002500;c2500@example.ru\n"
    path = files / "clients.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")

    summary = await import_file(engine, Kind.CLIENTS, path, ImportOptions(batch_size=1000))

    assert (summary.created, summary.rejected) == (2999, 1)
    assert "C3000" in await _client_ids(engine)
    [reject] = read_rejects(path.with_name("clients.csv.rejects.csv"))
    assert (reject[0], "нулевой байт" in reject[1]) == ("2501", True)


def test_a_nul_byte_through_the_cli_still_prints_the_json_summary(
    db_url: str, files: Path
) -> None:
    lines = [_row(i) for i in range(1, 2001)]
    lines[1499] = "C1500;Секретный\x00 Клиент;+79160001500;secret@example.ru\n"
    path = files / "clients.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")

    result = run_povtor(db_url, "import", "clients", str(path), "--json", cwd=files)

    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout) == {
        "created": 1999,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "rejects_file": str(path.with_name("clients.csv.rejects.csv")),
    }
    assert "secret@example.ru" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["C1", "+79161234567"], "в строке 2 полей, а в заголовке 4"),
        (["C1,Иван,+79161234567,i@example.ru"], "в строке 1 полей, а в заголовке 4"),
        (["C1", "Иван", "+79161234567", "i@example.ru", "лишнее"], "лишние значения"),
    ],
)
async def test_a_row_that_does_not_fit_the_header_is_rejected_not_a_junk_client(
    engine: AsyncEngine, files: Path, row: list[str], reason: str
) -> None:
    header = ["Код клиента", "ФИО", "Телефон", "E-mail"]
    good = ["C2", "Пётр", "+79161234568", "p@example.ru", ""]
    path = write_csv(files / "clients.csv", [header, row, good])

    summary = await import_file(engine, Kind.CLIENTS, path)

    assert (summary.created, summary.rejected) == (1, 1)
    assert await _client_ids(engine) == {"C2"}
    [reject] = read_rejects(path.with_name("clients.csv.rejects.csv"))
    assert reason in reject[1]


def test_duplicate_header_columns_are_reported(db_url: str, files: Path) -> None:
    path = write_csv(
        files / "clients.csv",
        [
            ["Код клиента", "E-mail", "ФИО", "Почта"],
            ["C1", "first@example.ru", "Иван", "second@example.ru"],
        ],
    )
    result = run_povtor(db_url, "import", "clients", str(path), "--json", cwd=files)
    assert result.returncode == 0, result.stderr
    assert "warning: columns 'E-mail', 'Почта' all mean email" in result.stderr
    assert last_json(result.stdout)["created"] == 1


ORDER_HEADER = ["Номер заказа", "Код клиента", "Дата", "Сумма", "Дата доставки"]


async def test_dates_that_cannot_be_true_are_rejected_with_the_reason(
    engine: AsyncEngine, files: Path
) -> None:
    await import_file(engine, Kind.CLIENTS, write_csv(files / "c.csv", [["client_id"], ["C1"]]))
    next_year = datetime.now(UTC).year + 1
    path = write_csv(
        files / "orders.csv",
        [
            ORDER_HEADER,
            ["O1", "C1", "01.02.1900", "100", ""],
            ["O2", "C1", f"01.02.{next_year}", "100", ""],
            ["O3", "C1", "10.02.2024", "100", "01.02.2024"],
            ["O4", "C1", "10.02.2024 15:30", "100", "10.02.2024"],  # same day: fine
            ["O5", "C1", "01.01.1990", "100", f"01.01.{next_year + 5}"],
        ],
    )
    summary = await import_file(engine, Kind.ORDERS, path)

    assert (summary.created, summary.rejected) == (1, 4)
    reasons = [r[1] for r in read_rejects(path.with_name("orders.csv.rejects.csv"))]
    assert "дата заказа 01.02.1900 раньше 1990 года" in reasons[0]
    assert f"дата заказа 01.02.{next_year} ещё не наступила" in reasons[1]
    assert "доставка 01.02.2024 раньше заказа 10.02.2024" in reasons[2]
    assert "дата доставки" in reasons[3]


async def test_an_xlsx_formula_without_a_value_is_reported_as_a_formula(
    engine: AsyncEngine, files: Path
) -> None:
    await import_file(engine, Kind.CLIENTS, write_csv(files / "c.csv", [["client_id"], ["C1"]]))
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Номер заказа", "Код клиента", "Дата", "Сумма", "Комментарий"])
    sheet.append(["O1", "C1", "=TODAY()-3", 100, None])  # saved by a script: no cached value
    sheet.append(["O2", "C1", "01.02.2024", 100, "=1+1"])  # a formula in an unused column
    path = files / "orders.xlsx"
    book.save(path)

    summary = await import_file(engine, Kind.ORDERS, path)

    assert (summary.created, summary.rejected) == (1, 1)
    [reject] = read_rejects(path.with_name("orders.xlsx.rejects.csv"))
    assert "в колонке 'Дата' формула =TODAY()-3 без вычисленного значения" in reject[1]
    assert "None" not in reject[1]


async def test_clients_without_a_code_column_are_imported_and_matched_by_phone(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    await import_file(
        engine,
        Kind.CLIENTS,
        write_csv(files / "crm.csv", [["Код клиента", "Телефон"], ["K-7", "+79161112233"]]),
    )
    path = write_csv(
        files / "phones.csv",
        [
            ["ФИО", "Телефон"],
            ["Иван", "8 916 111-22-33"],  # already known as K-7
            ["Пётр", "+7 916 444-55-66"],
            ["Без телефона", ""],
        ],
    )
    summary = await import_file(engine, Kind.CLIENTS, path)

    assert (summary.created, summary.updated, summary.rejected) == (1, 1, 1)
    known = await store.find_client("K-7")
    assert known is not None
    assert known.name == "Иван"
    new = await store.find_client("+79164445566")
    assert new is not None
    assert new.name == "Пётр"
    [reject] = read_rejects(path.with_name("phones.csv.rejects.csv"))
    assert "нет ни кода клиента, ни телефона" in reject[1]
    again = await import_file(engine, Kind.CLIENTS, path)  # idempotent
    assert (again.created, again.unchanged) == (0, 2)


async def test_rejects_file_neutralises_cells_that_start_like_a_formula(
    engine: AsyncEngine, files: Path
) -> None:
    path = write_csv(
        files / "clients.csv",
        [["Код клиента", "Телефон", '=HYPERLINK("x")'], ["=1+1", "garbage", "@SUM(A1)"]],
    )
    await import_file(engine, Kind.CLIENTS, path)
    with path.with_name("clients.csv.rejects.csv").open(encoding="utf-8-sig") as f:
        header, row = csv.reader(f, delimiter=";")
    assert header[2:] == ["Код клиента", "Телефон", '\'=HYPERLINK("x")']
    assert row[2:] == ["'=1+1", "garbage", "'@SUM(A1)"]


async def test_a_row_the_database_refuses_is_rejected_alone_with_no_values_in_the_reason(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores NUL bytes; PostgreSQL refuses them")
    now = datetime.now(UTC)
    records = [ClientRecord(row=i, external_id=f"C{i}", name=f"Клиент {i}") for i in range(2, 10)]
    records[3] = ClientRecord(row=5, external_id="C5", name="Тайное\x00имя")
    async with engine.connect() as conn:
        await conn.begin()
        result = await write_isolated(
            conn,
            records,
            lambda part: upsert_clients(conn, part, default_timezone="UTC", now=now),
            lambda r: r.row,
        )
        await conn.commit()
    assert result.counts["created"] == 7
    [(row, reason)] = result.rejects
    assert row == 5
    assert reason.startswith("база данных не приняла строку: ")
    assert "Тайное" not in reason
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ClientRow)) == 7
