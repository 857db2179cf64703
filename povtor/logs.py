"""Logging an operator can read: text or JSON lines, personal data masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_PHONE = re.compile(r"(?<![\w@])\+?\d[\d\s().-]{8,}\d(?!\w)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


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


def mask_text(text: str) -> str:
    """Mask anything that looks like a phone number inside free text."""
    return _PHONE.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    candidate = match.group(0)
    digits = sum(ch.isdigit() for ch in candidate)
    if digits < 10 or _DATE.match(candidate):
        return candidate
    return mask_phone(candidate)


class MaskingFilter(logging.Filter):
    """Last line of defence: phone numbers never reach a log handler unmasked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
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
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


# Libraries whose DEBUG output is noise, or worse: botocore logs the S3 access key id at DEBUG
_LIBRARIES = ("aiosqlite", "asyncio", "aiohttp.access", "botocore", "boto3", "s3transfer",
              "urllib3")  # fmt: skip
_QUIET = ("aiosqlite", "asyncio", "aiohttp.access")  # WARNING unless asked for lower


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
