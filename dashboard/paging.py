"""Keyset cursors in URLs: short, opaque to users, checked when read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from povtor.ports import NpsCursor

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def nps_cursor_text(cursor: NpsCursor) -> str:
    micros = (cursor.answered_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{cursor.id}"


def parse_nps_cursor(text: str | None) -> NpsCursor | None:
    """None for a missing or malformed cursor (the list starts from the top)."""
    if not text:
        return None
    micros, _, ident = text.partition(".")
    if not (micros.isdigit() and ident.isdigit()):
        return None
    if len(micros) > 18:
        return None
    at = EPOCH + timedelta(microseconds=int(micros))
    return NpsCursor(at, int(ident))


def parse_id(text: str | None) -> int | None:
    """A positive id from a query parameter, or None."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        # isdigit() alone takes "²" and "٣", which int() refuses
        return None
    value = int(text)
    return value if value > 0 else None
