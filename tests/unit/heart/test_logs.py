from __future__ import annotations

import logging

import pytest

from povtor.logs import MaskingFilter, mask_phone, mask_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("звонок +79161234567", "звонок +7********67"),
        ("call 8 (916) 123-45-67 ok", "call 8********67 ok"),
        ("at 2026-01-01 10:00:00", "at 2026-01-01 10:00:00"),
        ("attempt 1234567 done", "attempt 1234567 done"),
    ],
)
def test_phone_numbers_are_masked_in_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_mask_phone_keeps_only_country_digit_and_last_two() -> None:
    assert mask_phone("+79161234567") == "+7********67"


def test_log_records_leave_the_filter_masked() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "dial %s", ("+79161234567",), None)
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "dial +7********67"
