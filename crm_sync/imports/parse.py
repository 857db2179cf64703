"""Pure cell parsers for imports (phones, dates, amounts, ids); CellError carries the reason."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers

CellValue = str | int | float | Decimal | datetime | date | time | bool | None

_PHONE_SPLIT = re.compile(r"[,;/\n]+")
_DOTTED = re.compile(
    r"^(\d{1,2})[./](\d{1,2})[./](\d{4}|\d{2})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009\u2007']+")
_CURRENCY = re.compile(r"(₽|руб\.?|р\.|rub|\$|€)", re.IGNORECASE)
_CENT = Decimal("0.01")
_MAX_AMOUNT = Decimal("999999999999.99")  # Numeric(14, 2)
CACHE_SIZE = 16_384  # values per cache: a few MB at most
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Formula(str):
    """An XLSX formula cell that has no stored result (the file was never opened in Excel)."""

    __slots__ = ()


class CellError(ValueError):
    """A cell cannot be used; the message is the reason written to the rejects file."""


def text(value: CellValue) -> str:
    """A cell as trimmed text; Excel numbers that are whole come back without ".0"."""
    if value.__class__ is str:  # every CSV cell
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def parse_phones(value: CellValue, region: str) -> tuple[str, ...]:
    """One cell with one or more phones (split on , ; / or newlines) -> E.164 numbers, in order."""
    found: list[str] = []
    for part in _PHONE_SPLIT.split(text(value)):
        candidate = part.strip()
        if not candidate:
            continue
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException as err:
            raise CellError(f"телефон {candidate!r} не распознан") from err
        if not phonenumbers.is_valid_number(number):
            raise CellError(f"телефон {candidate!r} не существует в плане нумерации")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if e164 not in found:
            found.append(e164)
    return tuple(found)


def parse_datetime(value: CellValue, tz: ZoneInfo) -> datetime:
    """dd.mm.yyyy [hh:mm[:ss]], ISO 8601, or an Excel date cell -> aware UTC.

    Naive values are wall-clock time in ``tz`` (the business's default time zone).
    """
    if isinstance(value, Formula):
        raise CellError(f"в ячейке даты формула {value} без значения")
    if isinstance(value, str):
        raw = value.strip()
        if len(raw) <= 10:  # a date without time: such values repeat
            return _date_text_to_utc(raw, tz)
        if len(raw) == 16 and raw[10] == " " and raw[13] == ":":  # dd.mm.yyyy hh:mm (1C)
            day = day_start_utc(raw[:10], tz)
            hour, minute = raw[11:13], raw[14:16]
            if (
                day is not None
                and (hour + minute).isascii()
                and (hour + minute).isdigit()
                and int(hour) < 24
                and int(minute) < 60
            ):
                return day + timedelta(hours=int(hour), minutes=int(minute))
        return _to_utc(_parse_date_text(raw), tz)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif value is None:
        raise CellError("дата не указана")
    else:
        raise CellError(f"дата {value!r} не распознана")
    return _to_utc(moment, tz)


@lru_cache(maxsize=CACHE_SIZE)
def _date_text_to_utc(raw: str, tz: ZoneInfo) -> datetime:
    """Exports repeat dates (delivery days, whole-day orders): each is parsed once."""
    return _to_utc(_parse_date_text(raw), tz)


@lru_cache(maxsize=CACHE_SIZE)
def day_start_utc(raw: str, tz: ZoneInfo) -> datetime | None:
    """Midnight of a dd.mm.yyyy day in UTC, when every hour of it has one offset; None for a
    day with a clock change or text that is not such a day (the full parse decides both)."""
    if raw[2:3] != "." or raw[5:6] != ".":
        return None
    try:
        start = _parse_date_text(raw)
    except CellError:
        return None
    offset = _day_offset(start.year, start.month, start.day, tz)
    return None if offset is None else start.replace(tzinfo=UTC) - offset


def _to_utc(moment: datetime, tz: ZoneInfo) -> datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    offset = _day_offset(moment.year, moment.month, moment.day, tz)
    if offset is None:  # a day with a clock change: zoneinfo decides (fold=0)
        return moment.replace(tzinfo=tz).astimezone(UTC)
    return moment.replace(tzinfo=UTC) - offset


@lru_cache(maxsize=CACHE_SIZE)
def _day_offset(year: int, month: int, day: int, tz: ZoneInfo) -> timedelta | None:
    """The zone's UTC offset on a local day without a clock change, else None."""
    start = datetime(year, month, day, tzinfo=tz)
    offset = start.utcoffset()
    following = datetime.combine(start.date() + timedelta(days=1), time(), tz).utcoffset()
    return offset if offset == following else None


def _parse_date_text(raw: str) -> datetime:
    if not raw:
        raise CellError("дата не указана")
    match = _DOTTED.match(raw)
    try:
        if match is not None:
            day, month, year, hour, minute, second = match.groups()
            full_year = int(year) + (2000 if len(year) == 2 else 0)
            return datetime(  # noqa: DTZ001 - wall-clock time, the zone is applied by the caller
                full_year,
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
            )
        return datetime.fromisoformat(raw)
    except ValueError as err:
        raise CellError(f"дата {raw!r} не распознана (ждём дд.мм.гггг или ISO)") from err


def parse_amount(value: CellValue) -> Decimal:
    """'1 234,50', '1234.50', '1,234.50', '1 234 ₽', Excel numbers -> Decimal with 2 places."""
    if isinstance(value, str):
        return _amount_text(value)
    if isinstance(value, bool) or value is None:
        raise CellError("сумма не указана")
    if isinstance(value, int | float | Decimal):
        return _checked_amount(Decimal(str(value)), value)
    raise CellError(f"сумма {value!r} не распознана")


@lru_cache(maxsize=CACHE_SIZE)
def _amount_text(value: str) -> Decimal:
    """Prices repeat: each spelling is read once (Decimal is immutable)."""
    raw = _CURRENCY.sub("", _SPACES.sub("", value))
    if not raw:
        raise CellError("сумма не указана")
    return _checked_amount(_decimal_from_text(raw, value), value)


def _checked_amount(amount: Decimal, value: CellValue) -> Decimal:
    if not amount.is_finite():
        raise CellError(f"сумма {value!r} не распознана")
    if amount < 0:
        raise CellError(f"сумма {value!r} отрицательная")
    if amount > _MAX_AMOUNT:
        raise CellError(f"сумма {value!r} слишком большая")
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _decimal_from_text(raw: str, original: str) -> Decimal:
    comma, dot = raw.rfind(","), raw.rfind(".")
    if comma >= 0 and dot >= 0:  # the later one is the decimal separator
        thousands = "." if comma > dot else ","
        raw = raw.replace(thousands, "")
    elif raw.count(",") > 1 or raw.count(".") > 1:  # "1,234,567": thousands only
        raw = raw.replace(",", "").replace(".", "")
    raw = raw.replace(",", ".")
    try:
        return Decimal(raw)
    except InvalidOperation as err:
        raise CellError(f"сумма {original!r} не распознана") from err


def parse_email(value: CellValue) -> str | None:
    raw = text(value)
    if not raw:
        return None
    if len(raw) > 320:  # the column's size
        raise CellError("e-mail длиннее 320 символов")
    if not _EMAIL.match(raw):
        raise CellError(f"e-mail {raw!r} не похож на адрес")
    return raw.lower()


def parse_id(value: CellValue, what: str) -> str:
    raw = text(value)
    if not raw:
        raise CellError(f"не указан {what}")
    if len(raw) > 128:
        raise CellError(f"{what} длиннее 128 символов")
    return raw
