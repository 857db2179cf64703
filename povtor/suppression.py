"""The suppression list of erased clients: keyed hashes, never phones or codes in clear.

A client erased on request (152-FZ) must not be re-created by the next import nor contacted
again, so what identified them is kept as HMAC-SHA256 digests under a secret key: a digest
matches the same phone (E.164) or client code again, and without the key the list cannot be
tested against guessed numbers (a plain hash of a phone number is reversed by trying every
number).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

PHONE = "phone"
EXTERNAL_ID = "external_id"


def digest(key: bytes, kind: str, value: str) -> str:
    """The hex HMAC-SHA256 of ``kind:value`` (a phone in E.164, a client code as given)."""
    return hmac.new(key, f"{kind}:{value.strip()}".encode(), hashlib.sha256).hexdigest()


def client_digests(key: bytes, phones: Iterable[str], external_id: str | None) -> list[str]:
    """The digests that identify a client: each phone, and its code."""
    found = [digest(key, PHONE, phone) for phone in phones if phone]
    if external_id:
        found.append(digest(key, EXTERNAL_ID, external_id))
    return list(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class SuppressionList:
    """The digests of erased clients with the key that made them."""

    key: bytes
    digests: frozenset[str] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.digests)

    def matches(self, phones: Iterable[str] = (), external_id: str | None = None) -> bool:
        """Whether any of the phones or the code belongs to an erased client."""
        if not self.digests:
            return False
        return any(d in self.digests for d in client_digests(self.key, phones, external_id))


def normalise_phone(raw: str, region: str) -> str | None:
    """A phone as typed (``8 999 123-45-67``, ``+7...``) in E.164, or None when it is no valid
    number: the form the store keeps and the digests are made of."""
    import phonenumbers

    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
