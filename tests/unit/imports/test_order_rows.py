"""Order rows to staging tuples: a repeated day cell gives the same values as a fresh one; the
tuples are the same for both databases (moments and amounts as text)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crm_sync.imports.headers import Kind, map_columns
from crm_sync.imports.order_rows import OrderRows, sqlite_time
from crm_sync.imports.parse import CellError, parse_datetime
from crm_sync.imports.records import ParseContext

HEADER = ["Номер заказа", "Код клиента", "Дата", "Сумма", "Дата доставки"]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _rows() -> OrderRows:
    ctx = ParseContext("RU", ZoneInfo("Europe/Moscow"), "RUB", now=NOW)
    return OrderRows(map_columns(Kind.ORDERS, HEADER, {}), ctx)


def test_a_repeated_delivery_day_is_stored_as_the_first_time() -> None:
    rows = _rows()
    first = rows.staged(2, ["O1", "C1", "12.07.2024 11:00", "1 840,00", "13.07.2024"])
    again = rows.staged(3, ["O2", "C1", "12.07.2024 23:30", "10", "13.07.2024"])
    fresh = _rows().staged(3, ["O2", "C1", "12.07.2024 23:30", "10", "13.07.2024"])

    assert again == fresh
    assert first[4] == again[4]
    assert again[4] == "2024-07-12 21:00:00.000000"  # midnight in Moscow, in UTC


def test_a_repeated_day_is_checked_against_each_rows_order_date() -> None:
    rows = _rows()
    rows.staged(2, ["O1", "C1", "10.07.2024 11:00", "10", "13.07.2024"])
    with pytest.raises(CellError, match="раньше заказа"):
        rows.staged(3, ["O2", "C1", "14.07.2024 11:00", "10", "13.07.2024"])


def test_an_implausible_day_is_rejected_every_time_it_repeats() -> None:
    rows = _rows()
    for number in (2, 3):
        with pytest.raises(CellError, match="ещё не наступила"):
            rows.staged(number, ["O1", "C1", "10.07.2024 11:00", "10", "13.07.2030"])


# Days with a clock change, zones off the whole hour, the edges of the plausible years: the
# per-day shortcut must give what the general parser gives, cell by cell.
MOMENT_CASES = [
    ("Europe/Berlin", "31.03.2024 01:59"),
    ("Europe/Berlin", "31.03.2024 02:30"),  # does not exist: the zone decides
    ("Europe/Berlin", "27.10.2024 02:30"),  # twice: the first one
    ("Europe/Berlin", "28.10.2024 23:59"),
    ("Asia/Kolkata", "15.08.2024 00:00"),  # +05:30: UTC is not at :00
    ("Asia/Kathmandu", "15.08.2024 23:45"),  # +05:45
    ("Europe/Moscow", "01.01.1990 00:00"),
    ("Europe/Moscow", "02.01.2026 23:59"),
    ("America/Havana", "10.03.2024 00:30"),  # the clock moves at midnight
]


def _rows_in(zone: str) -> OrderRows:
    ctx = ParseContext("RU", ZoneInfo(zone), "RUB", now=NOW)
    return OrderRows(map_columns(Kind.ORDERS, HEADER, {}), ctx)


@pytest.mark.parametrize(("zone", "cell"), MOMENT_CASES)
def test_an_order_moment_is_the_general_parsers_moment(zone: str, cell: str) -> None:
    expected = sqlite_time(parse_datetime(cell, ZoneInfo(zone)))
    rows = _rows_in(zone)
    first = rows.staged(2, ["O1", "C1", cell, "10", ""])
    again = rows.staged(3, ["O2", "C1", cell, "10", ""])  # its day known by now

    assert first[3] == again[3] == expected


@pytest.mark.parametrize(
    ("known", "cell", "reason"),
    [
        ("31.12.1989 23:59", "31.12.1989 23:59", "раньше 1990 года"),
        ("03.01.2026 03:00", "03.01.2026 03:01", "ещё не наступила"),  # NOW + 2 days, Moscow
        ("12.07.2024 23:00", "12.07.2024 24:00", "не распознана"),
        ("12.07.2024 11:00", "12.07.2024 11:60", "не распознана"),
        ("31.02.2024 11:00", "31.02.2024 11:00", "не распознана"),
    ],
)
def test_a_bad_order_moment_is_rejected_with_its_reason(
    known: str, cell: str, reason: str
) -> None:
    rows = _rows()
    if known != cell:  # a good moment of the same day first: the day is known
        rows.staged(2, ["O0", "C1", known, "10", ""])
    for number in (3, 4):  # and stays rejected when it repeats
        with pytest.raises(CellError, match=reason):
            rows.staged(number, ["O1", "C1", cell, "10", ""])


def test_a_delivery_day_before_the_order_day_is_rejected_whatever_the_hour() -> None:
    rows = _rows()
    rows.staged(2, ["O1", "C1", "13.07.2024 00:00", "10", "13.07.2024"])  # the same day
    with pytest.raises(CellError, match=re.escape("доставка 12.07.2024 раньше заказа 13.07.2024")):
        rows.staged(3, ["O2", "C1", "13.07.2024 00:01", "10", "12.07.2024"])


def test_amounts_are_stored_alike_when_their_text_repeats() -> None:
    rows = _rows()
    first = rows.staged(2, ["O1", "C1", "12.07.2024 11:00", "1 840,00", ""])
    again = rows.staged(3, ["O2", "C1", "12.07.2024 11:00", "1 840,00", ""])
    assert first[5] == again[5] == "1840.00"
    with pytest.raises(CellError, match="отрицательная"):
        rows.staged(4, ["O3", "C1", "12.07.2024 11:00", "-5", ""])
