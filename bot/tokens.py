"""Signed deep-link tokens (client linking) and one-time manager invite codes.

A client token is ``c`` + base64url(client_id:8 | issued_at:4 | nonce:6 | hmac:15): 45
characters of ``[A-Za-z0-9_-]``, not guessable without the secret key, and bound to the first
chat that uses it (the nonce is recorded by the bot).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

CLIENT_PREFIX = "c"
INVITE_PREFIX = "m"
_BODY = struct.Struct(">QI6s")
_MAC_LEN = 15
_CONTEXT = b"povtor-telegram-link:"


@dataclass(frozen=True, slots=True)
class LinkClaim:
    client_id: int
    issued_at: datetime
    nonce: str


def _mac(key: str, body: bytes) -> bytes:
    return hmac.new(key.encode(), _CONTEXT + body, hashlib.sha256).digest()[:_MAC_LEN]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def make_link_token(key: str, client_id: int, *, now: datetime | None = None) -> str:
    issued = int((now or datetime.now(UTC)).timestamp())
    body = _BODY.pack(client_id, issued, secrets.token_bytes(6))
    return CLIENT_PREFIX + _b64(body + _mac(key, body))


def read_link_token(
    key: str, token: str, *, ttl: timedelta, now: datetime | None = None
) -> LinkClaim | None:
    """The claim of a valid, unexpired token, or None for anything forged, mangled or old."""
    if not token.startswith(CLIENT_PREFIX) or len(token) > 64:
        return None
    payload = token[len(CLIENT_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _BODY.size + _MAC_LEN:
        return None
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    if not hmac.compare_digest(mac, _mac(key, body)):
        return None
    client_id, issued, nonce = _BODY.unpack(body)
    issued_at = datetime.fromtimestamp(issued, UTC)
    if (now or datetime.now(UTC)) - issued_at > ttl:
        return None
    return LinkClaim(client_id=client_id, issued_at=issued_at, nonce=nonce.hex())


def make_invite_code() -> str:
    return INVITE_PREFIX + secrets.token_urlsafe(24)


def invite_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def deep_link(bot_username: str, payload: str) -> str:
    return f"https://t.me/{bot_username.lstrip('@')}?start={payload}"
