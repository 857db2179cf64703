from __future__ import annotations

import io
import json
import logging

import pytest

from povtor.logs import (
    _LIBRARIES,
    JsonFormatter,
    MaskingFilter,
    mask_address,
    mask_login,
    mask_phone,
    mask_text,
    setup_logging,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("звонок +79161234567", "звонок +7********67"),
        ("call 8 (916) 123-45-67 ok", "call 8********67 ok"),
        ("at 2026-01-01 10:00:00", "at 2026-01-01 10:00:00"),
        ("attempt 1234567 done", "attempt 1234567 done"),
        ("client id79161234567x", "client id7********67x"),
        ("saved call_79161234567.wav", "saved call_7********67.wav"),
        ("phones:+79161234567,+79161234568", "phones:+7********67,+7********68"),
        ("order 123456789012345678901", "order 123456789012345678901"),
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


def _dial(number: str) -> None:
    raise RuntimeError(f"SIP 486 for {number}")


@pytest.mark.parametrize("formatter", [logging.Formatter(), JsonFormatter()])
def test_exception_messages_and_tracebacks_are_masked(formatter: logging.Formatter) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(formatter)
    log = logging.getLogger("test.masking")
    log.addHandler(handler)
    log.propagate = False
    phone = "+79161234567"
    try:
        try:
            _dial(phone)
        except RuntimeError:
            log.exception("dial failed")
        log.error("stack", stack_info=True, extra={"n": phone})
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    shown = (
        json.loads(text.splitlines()[0])["exc"] if isinstance(formatter, JsonFormatter) else text
    )
    assert "RuntimeError: SIP 486 for +7********67" in shown
    assert phone not in text
    assert "_dial(phone)" in text  # the traceback itself is still there


def test_logins_and_addresses_are_masked_for_the_sign_in_log() -> None:
    assert [mask_login(x) for x in ("anna", "+79161234567", "ab", "")] == [
        "a**a",
        "+**********7",
        "**",
        "",
    ]
    assert mask_address("203.0.113.57") == "203.0.113.*"
    assert mask_address("2001:db8:85a3:1:2:3:4:5") == "2001:0db8:85a3:0001:*"
    assert mask_address(None) == "?"


def test_aiograms_line_per_update_is_quiet_at_info() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in _LIBRARIES}
    event = logging.getLogger("aiogram.event")
    try:
        setup_logging("INFO")
        assert not event.isEnabledFor(logging.INFO)  # a line per button press, else
        assert event.isEnabledFor(logging.WARNING)
        setup_logging("DEBUG", library_level="DEBUG")
        assert event.isEnabledFor(logging.DEBUG)  # when asked for
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, was in levels.items():
            logging.getLogger(name).setLevel(was)
