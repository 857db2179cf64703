"""The suppression list matches an erased client's phone or code again, under its own key only,
and what the erase command is given is read into phones (E.164) and codes."""

from __future__ import annotations

import pytest

from app.commands.erase import CODE, PHONE, Target, parse_targets
from povtor.errors import InvalidInput
from povtor.suppression import EXTERNAL_ID, SuppressionList, client_digests, digest

KEY = b"k" * 32


def test_a_digest_is_keyed_and_holds_no_digits_of_the_phone() -> None:
    mine = digest(KEY, "phone", "+79161234567")
    assert len(mine) == 64
    assert "9161234567" not in mine
    assert mine == digest(KEY, "phone", " +79161234567 ")
    assert mine != digest(b"x" * 32, "phone", "+79161234567")
    assert mine != digest(KEY, EXTERNAL_ID, "+79161234567")  # a code is not a phone


@pytest.mark.parametrize(
    ("phones", "code", "matches"),
    [
        (("+79161234567",), None, True),
        (("+79990000000", "+79161234567"), "other", True),
        ((), "C1", True),
        (("+79990000000",), "C2", False),
        ((), None, False),
    ],
)
def test_the_list_matches_any_phone_or_the_code_of_an_erased_client(
    phones: tuple[str, ...], code: str | None, matches: bool
) -> None:
    erased = SuppressionList(KEY, frozenset(client_digests(KEY, ("+79161234567",), "C1")))
    assert erased.matches(phones, code) is matches
    assert not SuppressionList(KEY).matches(("+79161234567",), "C1")
    assert not SuppressionList(KEY)


def test_phones_are_normalised_and_file_lines_say_or_guess_what_they_are() -> None:
    lines = ["# a comment", "", "8 (916) 123-45-67", "code:79161234567", "phone:+7 916 765 43 21",
             "C-1042", "  +79160000003  "]  # fmt: skip
    assert parse_targets(["+7 916 111-22-33"], ["A1"], lines, "RU") == [
        Target(1, PHONE, "+79161112233"),
        Target(2, CODE, "A1"),
        Target(3, PHONE, "+79161234567"),
        Target(4, CODE, "79161234567"),
        Target(5, PHONE, "+79167654321"),
        Target(6, CODE, "C-1042"),
        Target(7, PHONE, "+79160000003"),
    ]


def test_a_bad_phone_is_named_by_its_place_not_echoed() -> None:
    with pytest.raises(InvalidInput, match="entry 2: not a valid phone number") as err:
        parse_targets(["+79161234567", "12345"], [], [], "RU")
    assert "12345" not in str(err.value)


@pytest.mark.parametrize("key", [b"", b"short", b"k" * 64, b"long" * 40])
def test_the_lists_fast_digest_is_the_hmac_of_any_key(key: bytes) -> None:
    values = ["+79161234567", " C-1 ", "Ёлка", ""]
    erased = SuppressionList(key, frozenset(digest(key, "phone", v) for v in values))
    for value in values:
        assert erased.matches((value,)) is bool(value)
        assert not erased.matches((), value)  # a phone's digest is no code's
    assert not erased.matches(("+79990000000",), "C-2")
