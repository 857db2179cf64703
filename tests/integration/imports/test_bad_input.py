"""Files that are not what they claim: each gives a clear message and loses nothing valid."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from crm_sync.history.tables import ClientRow
from crm_sync.imports.headers import Kind
from crm_sync.imports.run import import_file
from povtor.errors import InvalidInput
from tests.integration.imports.conftest import last_json, run_povtor, write_csv

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


async def _client_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(ClientRow)) or 0)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"\xef\xbb\xbf\r\n  \r\n", "is empty"),
        ("photo.csv", PNG, "is a PNG image"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old Excel .xls"),
        ("dump.csv", b"id;name\x00\x01\x02", "binary file"),
        ("notes.csv", "Просто заметка\nбез колонок\n".encode(), "no column for external_id"),
    ],
)
async def test_unusable_files_are_refused_with_a_reason(
    engine: AsyncEngine, files: Path, name: str, content: bytes, message: str
) -> None:
    path = files / name
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        await import_file(engine, Kind.CLIENTS, path)
    assert await _client_count(engine) == 0


async def test_a_zip_that_is_not_a_workbook_is_refused(engine: AsyncEngine, files: Path) -> None:
    path = files / "export.csv"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("clients.csv", "client_id;name\nC1;Иван\n")
    with pytest.raises(InvalidInput, match="not a readable XLSX workbook"):
        await import_file(engine, Kind.CLIENTS, path)


async def test_truncated_xlsx_imports_nothing_and_says_so(
    engine: AsyncEngine, files: Path
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Код клиента", "ФИО"])
    for i in range(2000):
        sheet.append([f"C{i}", f"Клиент номер {i}"])
    whole = files / "whole.xlsx"
    book.save(whole)
    cut = files / "cut.xlsx"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    with pytest.raises(InvalidInput, match="damaged or truncated"):
        await import_file(engine, Kind.CLIENTS, cut)
    assert await _client_count(engine) == 0
    assert (await import_file(engine, Kind.CLIENTS, whole)).created == 2000


async def test_utf8_file_with_stray_cp1251_bytes_late_keeps_the_text(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    ascii_rows = "".join(f"A{i};Client {i}\n" for i in range(5000)).encode()  # > 64 KiB
    path = files / "mixed.csv"
    path.write_bytes(b"client_id;name\n" + ascii_rows + "Z1;Иван Сидоров\n".encode("cp1251"))

    summary = await import_file(engine, Kind.CLIENTS, path)

    assert summary.created == 5001
    client = await store.find_client("Z1")
    assert client is not None
    assert client.name == "Иван Сидоров"


async def test_mixed_phone_spellings_in_one_file(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    path = write_csv(
        files / "phones.csv",
        [
            ["Код клиента", "Телефон"],
            ["C1", "8 (916) 123-45-67"],
            ["C2", "+7 916 123 45 68"],
            ["C3", "9161234569"],
            ["C4", "позвонить вечером"],
            ["C5", "+7 916"],
        ],
    )
    summary = await import_file(engine, Kind.CLIENTS, path)
    assert (summary.created, summary.rejected) == (3, 2)
    phones = [(await store.find_client(f"C{i}")) for i in (1, 2, 3)]
    assert [c.phones for c in phones if c] == [
        ("+79161234567",),
        ("+79161234568",),
        ("+79161234569",),
    ]


def test_not_a_csv_through_the_cli_gives_one_clear_line(db_url: str, files: Path) -> None:
    path = files / "image.csv"
    path.write_bytes(PNG)
    result = run_povtor(db_url, "import", "orders", str(path), "--json", cwd=files)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: image.csv is a PNG image, not a CSV or XLSX table"
    assert result.stdout == ""


def test_cp1251_orders_through_the_cli(db_url: str, files: Path) -> None:
    clients = write_csv(files / "c.csv", [["Код клиента", "ФИО"], ["К-1", "Ёжиков"]])
    orders = write_csv(
        files / "o.csv",
        [
            ["Номер заказа", "Код клиента", "Дата", "Сумма"],
            ["З-1", "К-1", "01.02.2024", "1 234,50"],
            ["З-2", "К-1", "2024-02-02", "99"],
            ["З-3", "К-404", "2024-02-02", "99"],
        ],
        encoding="cp1251",
    )
    assert run_povtor(db_url, "import", "clients", str(clients), cwd=files).returncode == 0
    result = run_povtor(db_url, "import", "orders", str(orders), "--json", cwd=files)
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert (summary["created"], summary["rejected"]) == (2, 1)
    shown = run_povtor(db_url, "client", "show", "К-1", "--json", cwd=files)
    view = last_json(shown.stdout)
    assert view["client"]["name"] == "Ёжиков"
    assert [o["external_id"] for o in view["orders"]] == ["З-2", "З-1"]
    assert [e["kind"] for e in view["timeline"]] == ["order", "order"]
