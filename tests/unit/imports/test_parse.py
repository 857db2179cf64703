"""Cell parsers: tables of real-world spellings from Russian CRM and 1C exports."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from crm_sync.imports.geo import parse_timezone, timezone_for_city
from crm_sync.imports.parse import (
    CellError,
    parse_amount,
    parse_datetime,
    parse_email,
    parse_id,
    parse_phones,
)

MSK = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("8 (916) 123-45-67", ("+79161234567",)),
        ("+7 916 123 45 67", ("+79161234567",)),
        ("9161234567", ("+79161234567",)),
        ("+7(916)1234567", ("+79161234567",)),
        (79161234567, ("+79161234567",)),
        (79161234567.0, ("+79161234567",)),
        ("8 916 123-45-67, +7 903 111 22 33", ("+79161234567", "+79031112233")),
        (
            "89161234567; 89031112233 / 89261112233",
            ("+79161234567", "+79031112233", "+79261112233"),
        ),
        ("+79161234567, 8 916 123 45 67", ("+79161234567",)),
        ("", ()),
        (None, ()),
    ],
)
def test_phones_become_e164(cell: object, expected: tuple[str, ...]) -> None:
    assert parse_phones(cell, "RU") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("cell", ["garbage", "12345", "+7 916 12", "нет телефона", "8 (916) 123"])
def test_garbage_phones_are_refused_with_the_cell_in_the_reason(cell: str) -> None:
    with pytest.raises(CellError, match="телефон"):
        parse_phones(cell, "RU")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("01.02.2024", datetime(2024, 1, 31, 21, 0, tzinfo=UTC)),
        ("1.2.2024", datetime(2024, 1, 31, 21, 0, tzinfo=UTC)),
        ("01.02.24", datetime(2024, 1, 31, 21, 0, tzinfo=UTC)),
        ("01.02.2024 10:30", datetime(2024, 2, 1, 7, 30, tzinfo=UTC)),
        ("01.02.2024 10:30:15", datetime(2024, 2, 1, 7, 30, 15, tzinfo=UTC)),
        ("2024-02-01", datetime(2024, 1, 31, 21, 0, tzinfo=UTC)),
        ("2024-02-01T10:30:00", datetime(2024, 2, 1, 7, 30, tzinfo=UTC)),
        ("2024-02-01T10:30:00Z", datetime(2024, 2, 1, 10, 30, tzinfo=UTC)),
        ("2024-02-01 10:30:00+05:00", datetime(2024, 2, 1, 5, 30, tzinfo=UTC)),
        (datetime(2024, 2, 1, 10, 30), datetime(2024, 2, 1, 7, 30, tzinfo=UTC)),
        (date(2024, 2, 1), datetime(2024, 1, 31, 21, 0, tzinfo=UTC)),
    ],
)
def test_dates_are_read_as_local_time_and_stored_utc(cell: object, expected: datetime) -> None:
    assert parse_datetime(cell, MSK) == expected  # type: ignore[arg-type]


BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("30.03.2024 23:30", datetime(2024, 3, 30, 22, 30, tzinfo=UTC)),  # the day before: +1
        ("31.03.2024 01:30", datetime(2024, 3, 31, 0, 30, tzinfo=UTC)),  # before the change
        ("31.03.2024 02:30", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),  # skipped hour: fold 0
        ("31.03.2024 03:30", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),  # after it: +2
        ("01.04.2024", datetime(2024, 3, 31, 22, 0, tzinfo=UTC)),
        ("27.10.2024 02:30", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),  # repeated hour: fold 0
        ("27.10.2024 12:00", datetime(2024, 10, 27, 11, 0, tzinfo=UTC)),
    ],
)
def test_local_times_on_clock_change_days_follow_the_zone(cell: str, expected: datetime) -> None:
    assert parse_datetime(cell, BERLIN) == expected
    assert parse_datetime(cell, BERLIN) == expected  # the second read comes from the caches


@pytest.mark.parametrize("cell", ["31.02.2024", "вчера", "2024/13/01", "", "1.2", 42])
def test_bad_dates_are_refused(cell: object) -> None:
    with pytest.raises(CellError, match="дата"):
        parse_datetime(cell, MSK)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cell", ["31.02.2024 10:00", "01.02.2024 24:00", "01.02.2024 10:60", "01.02.2024 1a:00",
             "01-02-2024 10:00"],
)  # fmt: skip
def test_bad_date_times_are_refused_with_the_whole_cell(cell: str) -> None:
    with pytest.raises(CellError, match="дата") as refused:
        parse_datetime(cell, MSK)
    assert repr(cell) in str(refused.value)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1 234,50", Decimal("1234.50")),
        ("1\u00a0234,50", Decimal("1234.50")),
        ("1\u202f234,5", Decimal("1234.50")),
        ("1234.50", Decimal("1234.50")),
        ("1,234.50", Decimal("1234.50")),
        ("1.234,50", Decimal("1234.50")),
        ("1 234 567", Decimal("1234567.00")),
        ("1,234,567", Decimal("1234567.00")),
        ("12,5", Decimal("12.50")),
        ("990 ₽", Decimal("990.00")),
        ("990 руб.", Decimal("990.00")),
        ("0,005", Decimal("0.01")),
        (1234.5, Decimal("1234.50")),
        (100, Decimal("100.00")),
    ],
)
def test_amounts_in_russian_and_english_notation(cell: object, expected: Decimal) -> None:
    assert parse_amount(cell) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("cell", ["abc", "", None, "-5", "1e400", "12,34,5.6.7"])
def test_bad_amounts_are_refused(cell: object) -> None:
    with pytest.raises(CellError, match="сумма"):
        parse_amount(cell)  # type: ignore[arg-type]


def test_email_is_lowercased_and_checked() -> None:
    assert parse_email(" Ivan@Example.RU ") == "ivan@example.ru"
    assert parse_email("") is None
    with pytest.raises(CellError, match="e-mail"):
        parse_email("ivan at example")


def test_numeric_ids_from_excel_lose_the_trailing_zero() -> None:
    assert parse_id(1001.0, "код") == "1001"
    with pytest.raises(CellError, match="не указан код"):
        parse_id("  ", "код")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Asia/Yekaterinburg", "Asia/Yekaterinburg"),
        ("МСК+4", "Asia/Krasnoyarsk"),
        ("MSK-1", "Europe/Kaliningrad"),
        ("мск", "Europe/Moscow"),
        ("UTC+5", "Asia/Yekaterinburg"),
        ("+3", "Europe/Moscow"),
        ("Mars/Olympus", None),
        ("завтра", None),
    ],
)
def test_time_zone_spellings(cell: str, expected: str | None) -> None:
    assert parse_timezone(cell) == expected


def test_city_gives_a_time_zone() -> None:
    assert timezone_for_city("г. Екатеринбург") == "Asia/Yekaterinburg"
    assert timezone_for_city("Новосибирск") == "Asia/Novosibirsk"
    assert timezone_for_city("Урюпинск") is None
