"""Order rows to staging tuples: a repeated day cell gives the same values as a fresh one."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crm_sync.imports.headers import Kind, map_columns
from crm_sync.imports.order_rows import OrderRows
from crm_sync.imports.parse import CellError
from crm_sync.imports.records import ParseContext

HEADER = ["Номер заказа", "Код клиента", "Дата", "Сумма", "Дата доставки"]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(dialect: str) -> OrderRows:
    ctx = ParseContext("RU", ZoneInfo("Europe/Moscow"), "RUB", now=NOW)
    return OrderRows(map_columns(Kind.ORDERS, HEADER, {}), ctx, dialect)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_repeated_delivery_day_is_stored_as_the_first_time(dialect: str) -> None:
    rows = _rows(dialect)
    first = rows.staged(2, ["O1", "C1", "12.07.2024 11:00", "1 840,00", "13.07.2024"])
    again = rows.staged(3, ["O2", "C1", "12.07.2024 23:30", "10", "13.07.2024"])
    fresh = _rows(dialect).staged(3, ["O2", "C1", "12.07.2024 23:30", "10", "13.07.2024"])

    assert again == fresh
    assert first[4] == again[4]
    expected = datetime(2024, 7, 12, 21, 0, tzinfo=UTC)  # midnight in Moscow
    assert again[4] == (expected if dialect == "postgresql" else "2024-07-12 21:00:00.000000")


def test_a_repeated_day_is_checked_against_each_rows_order_date() -> None:
    rows = _rows("sqlite")
    rows.staged(2, ["O1", "C1", "10.07.2024 11:00", "10", "13.07.2024"])
    with pytest.raises(CellError, match="раньше заказа"):
        rows.staged(3, ["O2", "C1", "14.07.2024 11:00", "10", "13.07.2024"])


def test_an_implausible_day_is_rejected_every_time_it_repeats() -> None:
    rows = _rows("sqlite")
    for number in (2, 3):
        with pytest.raises(CellError, match="ещё не наступила"):
            rows.staged(number, ["O1", "C1", "10.07.2024 11:00", "10", "13.07.2030"])
