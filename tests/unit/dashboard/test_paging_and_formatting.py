"""Cursors in URLs and how values look, by role."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import phonenumbers
import pytest

from dashboard.context import safe_next
from dashboard.formatting import Formatter, clock, money, nps_value, plural, show_phone
from dashboard.paging import nps_cursor_text, parse_id, parse_nps_cursor
from dashboard.roles import Role, can_listen, can_manage_users, can_write
from povtor.ports import NpsCursor


def test_nps_cursor_round_trips_to_the_microsecond() -> None:
    cursor = NpsCursor(datetime(2026, 3, 1, 9, 0, 0, 123457, tzinfo=UTC), 42)
    assert parse_nps_cursor(nps_cursor_text(cursor)) == cursor


@pytest.mark.parametrize("text", [None, "", "x", "1.", ".2", "-1.2", "1.2.3", "9" * 30 + ".1"])
def test_malformed_cursors_start_from_the_top(text: str | None) -> None:
    assert parse_nps_cursor(text) is None


@pytest.mark.parametrize(
    ("text", "expected"), [("7", 7), ("0", None), ("-3", None), ("abc", None), (None, None)]
)
def test_ids_from_queries(text: str | None, expected: int | None) -> None:
    assert parse_id(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/tasks?view=mine", "/tasks?view=mine"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_redirects_stay_on_this_site(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_phones_full_for_managers_masked_for_viewers() -> None:
    assert show_phone("+79161234567", Role.MANAGER) == "+7 916 123-45-67"
    assert show_phone("+79161234567", Role.ADMIN) == "+7 916 123-45-67"
    assert show_phone("+79161234567", Role.VIEWER) == "+7********67"


def test_russian_mobiles_are_written_as_phonenumbers_writes_them() -> None:
    rng = random.Random(7)
    numbers = ["+79000000000", "+79999999999", "+77011234567", "+74951234567", "+12025550123"]
    numbers += [f"+79{rng.randrange(10**9):09d}" for _ in range(2000)]
    for number in numbers:
        expected = phonenumbers.format_number(
            phonenumbers.parse(number, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
        assert show_phone(number, Role.MANAGER) == expected, number


@pytest.mark.parametrize(
    ("role", "write", "users", "listen"),
    [
        (Role.ADMIN, True, True, True),
        (Role.MANAGER, True, False, True),
        (Role.VIEWER, False, False, False),
    ],
)
def test_what_each_role_may_do(role: Role, write: bool, users: bool, listen: bool) -> None:
    assert (can_write(role), can_manage_users(role), can_listen(role)) == (write, users, listen)


def test_values_in_russian_format() -> None:
    assert money(Decimal("1234567.5")) == "1\u00a0234\u00a0567,50\u00a0₽"
    assert nps_value(-16.7) == "-17"
    assert nps_value(0.0) == "0"
    assert nps_value(42.0) == "+42"
    assert nps_value(None) == "—"
    assert clock(65.4) == "1:05"
    fmt = Formatter("Europe/Moscow")
    assert fmt.dt(datetime(2026, 3, 1, 21, 30, tzinfo=UTC)) == "02.03.2026 00:30"


@pytest.mark.parametrize(
    ("n", "word"),
    [(1, "оценка"), (2, "оценки"), (5, "оценок"), (11, "оценок"), (21, "оценка"), (112, "оценок")],
)
def test_russian_plurals(n: int, word: str) -> None:
    assert plural(n, "оценка", "оценки", "оценок") == f"{n}\u00a0{word}"
