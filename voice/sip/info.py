"""Keypad presses carried by SIP INFO (application/dtmf-relay and application/dtmf)."""

from __future__ import annotations

_DIGITS = "0123456789*#ABCD"
_EVENTS = {str(i): _DIGITS[i] for i in range(16)}  # some phones send the event number


def dtmf_from_info(content_type: str, body: str) -> str | None:
    """The digit an INFO request carries, or None when it carries none."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/dtmf-relay":
        for line in body.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                return _digit(value.strip())
        return None
    if kind == "application/dtmf":
        return _digit(body.strip())
    return None


def _digit(value: str) -> str | None:
    value = value.upper()
    if len(value) == 1 and value in _DIGITS:
        return value
    return _EVENTS.get(value)
