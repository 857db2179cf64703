"""Phone numbers as CRMs hold them: whatever spelling a manager typed."""

from __future__ import annotations

import re

_NON_DIGITS = re.compile(r"\D")


def phone_digits(phone: str) -> str:
    """Digits of a number, Russian trunk prefix folded: '8 (916) 123-45-67' -> '79161234567'."""
    digits = _NON_DIGITS.sub("", phone)
    if len(digits) == 11 and digits.startswith("8"):
        return "7" + digits[1:]
    return digits


def spellings(e164: str) -> list[str]:
    """Ways the same number is commonly written in a CRM: '+79161234567', '79161234567',
    '89161234567' (the last only for Russian and Kazakh numbers)."""
    digits = phone_digits(e164)
    found = [e164, digits]
    if len(digits) == 11 and digits.startswith("7"):
        found.append("8" + digits[1:])
    return list(dict.fromkeys(found))


def same_number(stored: str, e164: str) -> bool:
    return bool(stored) and phone_digits(stored) == phone_digits(e164)
