"""Logging an operator can read: text or JSON lines, personal data masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Digits may be glued to letters or underscores ("id79161234567", "call_79161234567.wav"):
# a phone is 10 to 15 digits, whatever surrounds it. Longer digit runs are not phones.
_PHONE = re.compile(r"(?<![\d@])\+?\d[\d\s().-]{8,}\d(?!\d)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_PHONE_DIGITS = 15  # E.164
_PLAIN = logging.Formatter()


def mask_phone(phone: str) -> str:
    """'+79161234567' -> '+7*******67': enough to tell calls apart, not to call."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 4:
        return "*" * len(digits)
    return (
        ("+" if phone.strip().startswith("+") else "")
        + digits[0]
        + "*" * (len(digits) - 3)
        + digits[-2:]
    )


def mask_login(login: str) -> str:
    """'anna.petrova' -> 'a**********a': a typed login may be someone's phone or e-mail."""
    if len(login) <= 2:
        return "*" * len(login)
    return login[0] + "*" * (len(login) - 2) + login[-1]


def mask_address(address: str | None) -> str:
    """The network, not the host: IPv4 to its /24 ('203.0.113.*'), IPv6 to its /64."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "?"
    if ip.version == 4:
        return ".".join(str(ip).split(".")[:3]) + ".*"
    return ":".join(ip.exploded.split(":")[:4]) + ":*"


def mask_text(text: str) -> str:
    """Mask anything that looks like a phone number inside free text."""
    return _PHONE.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    candidate = match.group(0)
    digits = sum(ch.isdigit() for ch in candidate)
    if digits < 10 or _DATE.match(candidate):
        return candidate
    if digits > _MAX_PHONE_DIGITS:  # a run of phones or an id: mask any phone-long run in it
        if candidate.isdigit():
            return candidate
        return re.sub(r"\d{10,15}(?!\d)", lambda m: mask_phone(m.group(0)), candidate)
    return mask_phone(candidate)


class MaskingFilter(logging.Filter):
    """Last line of defence: phone numbers never reach a log handler unmasked, neither in the
    message nor in an exception's message and traceback (formatted here, masked, and cached
    on the record where every formatter takes it from)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("client_id", "attempt_id", "call_id", "worker"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_text:  # masked by MaskingFilter
            payload["exc"] = record.exc_text
        elif record.exc_info:
            payload["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)


# Libraries whose DEBUG output is noise, or worse: botocore logs the S3 access key id at DEBUG.
# aiogram.event says "Update id=... is handled" at INFO for every update: a line (and its
# masking) per button press of a mass reminder, with nothing the bot's own lines do not say
_LIBRARIES = ("aiosqlite", "asyncio", "aiohttp.access", "aiogram.event", "botocore", "boto3",
              "s3transfer", "urllib3")  # fmt: skip
_QUIET = ("aiosqlite", "asyncio", "aiohttp.access", "aiogram.event")  # WARNING unless lower


def setup_logging(level: str = "INFO", fmt: str = "text", library_level: str = "INFO") -> None:
    """Our loggers at ``level``; third-party ones never below ``library_level``
    (``POVTOR_LOG_LIBRARY_LEVEL``: set it to DEBUG to see botocore's requests, keys and all)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    floor = logging.getLevelNamesMapping().get(library_level.upper(), logging.INFO)
    for name in _LIBRARIES:
        quiet = logging.WARNING if name in _QUIET and floor >= logging.INFO else floor
        logging.getLogger(name).setLevel(max(quiet, floor))
