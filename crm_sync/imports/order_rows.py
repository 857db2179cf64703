"""One order row -> its staging tuple (``order_batches``), or the reason it is rejected.

The columns are looked up once per file, and a row goes straight to the values the driver
stores (no record object in between): an import of a million orders spends more time here than
anywhere else in Python. The checks and their messages are those of every other row source.
Moments and amounts are staged as text on both databases: SQLite stores that text, PostgreSQL
casts it in the statement that resolves a batch (asyncpg's binary COPY encoding of datetimes
and Decimals took 4.7 times as long as that of the same values as text, 65 ms against 14 ms of
the importing process's CPU per 20,000 rows, against 23 ms more for the server to cast them).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from crm_sync.imports.headers import ColumnMap
from crm_sync.imports.parse import (
    CellError,
    CellValue,
    day_start_utc,
    parse_amount,
    parse_datetime,
    text,
)
from crm_sync.imports.records import ParseContext

EARLIEST_YEAR = 1990  # no business keeps orders older than this: an earlier date is a typo
FUTURE_MARGIN = timedelta(days=2)  # clocks and time zones; beyond it a date has not happened
MOMENTS_KEPT = 20_000  # distinct day cells remembered while reading a file (~5 MB at most)
DAY_TEXT = 10  # dd.mm.yyyy
_V = TypeVar("_V")

# Spellings of the rouble in exports, as ISO 4217
_CURRENCIES = {"РУБ": "RUB", "RUR": "RUB", "Р": "RUB", "РУБ.": "RUB"}
_FIELDS = (
    "external_id", "client_external_id", "placed_at", "delivered_at", "amount", "currency",
    "category", "item", "quantity",
)  # fmt: skip
_UNKNOWN: Any = object()  # not looked at yet
StagedOrder = tuple[Any, ...]  # the columns of ``order_batches._COLUMNS``, row number first


@lru_cache(maxsize=8)
def _earliest(tz: ZoneInfo) -> datetime:
    """The first moment of EARLIEST_YEAR in the zone, in UTC: a moment before it falls in an
    earlier local year (compared in UTC, as parsed moments are, without a zone lookup)."""
    return datetime(EARLIEST_YEAR, 1, 1, tzinfo=tz).astimezone(UTC)


def _plausible(moment: datetime, what: str, ctx: ParseContext) -> datetime:
    if moment < _earliest(ctx.tz):
        raise CellError(f"{what} {_local(moment, ctx)} раньше {EARLIEST_YEAR} года")
    if moment > ctx.now + FUTURE_MARGIN:
        raise CellError(f"{what} {_local(moment, ctx)} ещё не наступила")
    return moment


def _local(moment: datetime, ctx: ParseContext) -> str:
    return moment.astimezone(ctx.tz).strftime("%d.%m.%Y")


def sqlite_time(value: datetime | None) -> str | None:
    """UtcDateTime's SQLite text: naive UTC with microseconds (how moments are staged on
    both databases)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without "+00:00"


@lru_cache(maxsize=4096)
def items_json(name: str, quantity: str, category: str | None) -> str:
    """The one-item list as SQLAlchemy's JSON type writes it (rows repeat their products)."""
    item = {"name": name, "quantity": quantity, "price": None, "sku": None, "category": category}
    return json.dumps([item], ensure_ascii=False, default=str)


def _id(value: CellValue, what: str) -> str:
    raw = value.strip() if value.__class__ is str else text(value)
    if not raw:
        raise CellError(f"не указан {what}")
    if len(raw) > 128:
        raise CellError(f"{what} длиннее 128 символов")
    return raw


_MINUTES = {f"{m:02d}": timedelta(minutes=m) for m in range(60)}
_HOURS = {f"{h:02d}": h for h in range(24)}
MOMENT_TEXT = 16  # dd.mm.yyyy hh:mm (1C's order moments)
_DAY = timedelta(days=1)


def _remember(kept: dict[str, _V], key: str, value: _V) -> _V:
    """``value`` kept under ``key``; a memo that is full starts again, so an odd file cannot
    grow it without bound."""
    if len(kept) >= MOMENTS_KEPT:
        kept.clear()
    kept[key] = value
    return value


class _Day:
    """A local day without a clock change, as the order moments of it need it."""

    __slots__ = ("day", "hours", "plausible", "start")

    def __init__(self, start: datetime, day: date, plausible: bool) -> None:
        self.start = start  # midnight in UTC
        self.day = day
        self.plausible = plausible  # every moment of the day passes the date checks
        # per local hour, made when first met: (hh:00 in UTC, SQLite text up to the minute
        # "yyyy-mm-dd hh:" when that is :00 in UTC, else None)
        self.hours: list[tuple[datetime, str | None] | None] = [None] * 24

    def hour(self, number: int) -> tuple[datetime, str | None]:
        start = self.start + timedelta(hours=number)
        whole = start.minute == 0 and start.second == 0 and start.microsecond == 0
        stored = sqlite_time(start)
        made = self.hours[number] = (start, stored[:14] if whole and stored else None)
        return made


class OrderRows:
    """Staging tuples of one file's order rows (its columns, the import's zone)."""

    def __init__(self, columns: ColumnMap, ctx: ParseContext) -> None:
        self.ctx = ctx
        # Per field its column, or -1: the None appended to every row (an empty cell).
        index = [columns.single.get(name, -1) for name in _FIELDS]
        self._count = max(index) + 1
        self._cells = itemgetter(*index)
        self._earliest = _earliest(ctx.tz)
        self._latest = ctx.now + FUTURE_MARGIN
        # A date cell's text (a day, no time) -> (checked UTC moment, its stored value, local
        # day): delivery days repeat, so each is parsed, checked and formatted once per file.
        self._moments: dict[str, tuple[datetime, Any, date]] = {}
        # Order moments (to the minute) rarely repeat, their days do: "dd.mm.yyyy" -> the day,
        # or None when the text is not such a day.
        self._days: dict[str, _Day | None] = {}
        self._amounts: dict[str, Any] = {}  # amount text -> stored value

    def _moment(self, value: CellValue, what: str) -> tuple[datetime, Any, date]:
        key = value if value.__class__ is str and len(value) <= DAY_TEXT else None
        if key is not None and (known := self._moments.get(key)) is not None:
            return known
        moment = _plausible(parse_datetime(value, self.ctx.tz), what, self.ctx)
        found = (moment, sqlite_time(moment), moment.astimezone(self.ctx.tz).date())
        if key is not None:
            _remember(self._moments, key, found)
        return found

    def _day(self, text: str) -> _Day | None:
        """A "dd.mm.yyyy" day without a clock change, or None (the full parse decides)."""
        start = day_start_utc(text, self.ctx.tz)
        if start is None:
            return None
        return _Day(
            start,
            start.astimezone(self.ctx.tz).date(),
            self._earliest <= start and start + _DAY <= self._latest,
        )

    def _stored_amount(self, amount: CellValue) -> Any:
        return str(parse_amount(amount))

    def _placed(self, value: CellValue) -> tuple[Any, date]:
        """An order moment's stored value and local day."""
        if value.__class__ is str and len(value) == MOMENT_TEXT and value[10] == " ":
            key = value[:DAY_TEXT]
            day = self._days.get(key, _UNKNOWN)
            if day is _UNKNOWN:
                day = _remember(self._days, key, self._day(key))
            hour = _HOURS.get(value[11:13])
            minutes = _MINUTES.get(value[14:]) if value[13] == ":" else None
            if day is not None and hour is not None and minutes is not None:
                start, prefix = day.hours[hour] or day.hour(hour)
                if not day.plausible:
                    _plausible(start + minutes, "дата заказа", self.ctx)  # raises or passes
                if prefix is not None:
                    return prefix + value[14:] + ":00.000000", day.day
                return sqlite_time(start + minutes), day.day
        _, stored, local = self._moment(value, "дата заказа")
        return stored, local

    def staged(self, row: int, cells: list[CellValue]) -> StagedOrder:
        """Raises CellError with the reason when the row cannot be used."""
        short = self._count - len(cells)  # XLSX rows end at their last filled cell
        padded = (*cells, *((None,) * short), None) if short > 0 else (*cells, None)
        ext, client, placed, delivered, amount, currency, category, item, quantity = self._cells(
            padded
        )
        external_id = _id(ext, "номер заказа")
        client_id = _id(client, "код клиента")
        placed_value, placed_day = self._placed(placed)
        delivered_value = None
        if delivered.strip() if delivered.__class__ is str else text(delivered):
            _, delivered_value, delivered_day = self._moment(delivered, "дата доставки")
            # Compared by local day: a delivery date without time is midnight of that day.
            if delivered_day < placed_day:
                raise CellError(
                    f"доставка {delivered_day:%d.%m.%Y} раньше заказа {placed_day:%d.%m.%Y}"
                )
        code = None
        if currency is not None and (code := text(currency).upper() or None) is not None:
            code = _CURRENCIES.get(code, code)
            if len(code) != 3 or not code.isalpha():
                raise CellError(f"валюта {code!r} не распознана (ждём код ISO 4217, RUB)")
        category_text = (category.strip() if category.__class__ is str else text(category)) or None
        items = None
        if item_text := (item.strip() if item.__class__ is str else text(item)):
            items = items_json(item_text[:300], text(quantity) or "1", category_text)
        if amount.__class__ is str:
            value = self._amounts.get(amount)
            if value is None:
                value = _remember(self._amounts, amount, self._stored_amount(amount))
        else:
            value = self._stored_amount(amount)
        category_text = category_text[:128] if category_text else None
        return (row, external_id, client_id, placed_value, delivered_value, value, code,
                category_text, items)  # fmt: skip
