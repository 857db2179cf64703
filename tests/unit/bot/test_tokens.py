from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.tokens import deep_link, make_invite_code, make_link_token, read_link_token

KEY = "unit-secret"
TTL = timedelta(days=60)


def test_token_fits_telegram_start_parameter_and_round_trips() -> None:
    token = make_link_token(KEY, 123456789)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)
    claim = read_link_token(KEY, token, ttl=TTL)
    assert claim is not None
    assert claim.client_id == 123456789


def test_two_tokens_for_the_same_client_differ() -> None:
    first, second = make_link_token(KEY, 1), make_link_token(KEY, 1)
    assert first != second
    assert read_link_token(KEY, first, ttl=TTL) != read_link_token(KEY, second, ttl=TTL)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: make_link_token("other-key", 7),  # signed with another key
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character changed
        lambda t: t[:20],  # truncated
        lambda t: "c" + "A" * 44,  # guessed
        lambda t: "m" + t[1:],  # wrong kind
        lambda t: t + "=" * 30,  # too long
    ],
)
def test_forged_tokens_are_rejected(mangle: object) -> None:
    token = make_link_token(KEY, 7)
    assert read_link_token(KEY, mangle(token), ttl=TTL) is None  # type: ignore[operator]


def test_old_tokens_expire() -> None:
    issued = datetime(2025, 1, 1, tzinfo=UTC)
    token = make_link_token(KEY, 7, now=issued)
    assert read_link_token(KEY, token, ttl=TTL, now=issued + timedelta(days=59)) is not None
    assert read_link_token(KEY, token, ttl=TTL, now=issued + timedelta(days=61)) is None


def test_invite_codes_and_links() -> None:
    code = make_invite_code()
    assert re.fullmatch(r"m[A-Za-z0-9_-]{20,63}", code)
    assert deep_link("@shop_bot", code) == f"https://t.me/shop_bot?start={code}"
