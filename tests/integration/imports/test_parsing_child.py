"""An import parses in a child process: what crosses back is whole, what fails is reported."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.tables import ImportRunRow
from crm_sync.imports.headers import Kind
from crm_sync.imports.order_rows import OrderRows, StagedOrder
from crm_sync.imports.parse import CellValue
from crm_sync.imports.run import import_file
from tests.integration.imports.conftest import read_rejects, write_csv

ORDERS = ["Номер заказа", "Код клиента", "Дата", "Сумма", "Товар", "Категория"]


async def _clients(engine: AsyncEngine, files: Path, *ids: str) -> None:
    rows: list[list[object]] = [["client_id", "name"], *([i, f"Клиент {i}"] for i in ids)]
    await import_file(engine, Kind.CLIENTS, write_csv(files / "clients.csv", rows))


async def test_a_row_the_database_rejects_keeps_its_line_number_and_every_cell(
    engine: AsyncEngine, files: Path
) -> None:
    """Cells cross from the parsing process joined into one string: quotes, the delimiter
    and an empty cell come back as they were read."""
    await _clients(engine, files, "C1")
    unknown = ["O2", "C9", "01.02.2024 10:30", "1 234,50", "", 'Бумага; "А4"']
    path = write_csv(
        files / "orders.csv",
        [
            ORDERS,
            ["O1", "C1", "01.02.2024", "100", "", ""],
            unknown,
            ["O3", "C1", "", "1", "", ""],
        ],
    )

    summary = await import_file(engine, Kind.ORDERS, path)

    assert (summary.created, summary.rejected) == (1, 2)
    rejects = read_rejects(path.with_name("orders.csv.rejects.csv"))
    assert [r[0] for r in rejects] == ["3", "4"]
    assert "C9" in rejects[0][1]
    assert rejects[0][2:] == unknown


async def test_an_unexpected_parsing_error_ends_the_run_recorded_with_no_child_left(
    engine: AsyncEngine, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _clients(engine, files, "C1")
    rows: list[list[object]] = [
        ORDERS,
        *([f"O{n}", "C1", "01.02.2024", "1", "", ""] for n in range(5)),
    ]
    path = write_csv(files / "orders.csv", rows)
    staged = OrderRows.staged

    def broken(self: OrderRows, row: int, cells: list[CellValue]) -> StagedOrder:
        if row == 4:
            raise LookupError("a bug met on row 4")
        return staged(self, row, cells)

    monkeypatch.setattr(OrderRows, "staged", broken)  # before the fork: the child has it

    others = set(psutil.Process().children(recursive=True))  # other tests' processes
    with pytest.raises(LookupError, match="a bug met on row 4"):
        await import_file(engine, Kind.ORDERS, path)

    assert set(psutil.Process().children(recursive=True)) <= others
    async with engine.connect() as conn:
        error = await conn.scalar(select(ImportRunRow.error).where(ImportRunRow.kind == "orders"))
    assert error == "LookupError: a bug met on row 4"
