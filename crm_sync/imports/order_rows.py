"""One order row -> its staging tuple (``order_batches``), or the reason it is rejected.

The columns are looked up once per file, and a row goes straight to the values the driver
stores (no record object in between): an import of a million orders spends more time here than
anywhere else in Python. The checks and their messages are those of every other row source.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from crm_sync.imports.headers import ColumnMap
from crm_sync.imports.parse import CellError, CellValue, parse_amount, parse_datetime, text
from crm_sync.imports.records import ParseContext

EARLIEST_YEAR = 1990  # no business keeps orders older than this: an earlier date is a typo
FUTURE_MARGIN = timedelta(days=2)  # clocks and time zones; beyond it a date has not happened
SURELY_LATER_DAY = timedelta(days=2)
MOMENTS_KEPT = 20_000  # distinct day cells remembered while reading a file (~5 MB at most)
DAY_TEXT = 10  # dd.mm.yyyy

# Spellings of the rouble in exports, as ISO 4217
_CURRENCIES = {"РУБ": "RUB", "RUR": "RUB", "Р": "RUB", "РУБ.": "RUB"}
_FIELDS = (
    "external_id", "client_external_id", "placed_at", "delivered_at", "amount", "currency",
    "category", "item", "quantity",
)  # fmt: skip
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
    """UtcDateTime's SQLite text: naive UTC with microseconds."""
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


class OrderRows:
    """Staging tuples of one file's order rows (its columns, the import's zone, the database)."""

    def __init__(self, columns: ColumnMap, ctx: ParseContext, dialect: str) -> None:
        self.ctx = ctx
        self.pg = dialect == "postgresql"
        # Per field its column, or -1: the None appended to every row (an empty cell).
        index = [columns.single.get(name, -1) for name in _FIELDS]
        self._count = max(index) + 1
        self._cells = itemgetter(*index)
        # A date cell's text (a day, no time) -> (checked UTC moment, its stored value):
        # delivery days repeat, so each is parsed, checked and formatted once per file. Order
        # moments (to the minute) rarely repeat: they are not kept.
        self._moments: dict[str, tuple[datetime, Any]] = {}

    def _moment(self, value: CellValue, what: str) -> tuple[datetime, Any]:
        key = value if isinstance(value, str) and len(value) <= DAY_TEXT else None
        if key is not None and (known := self._moments.get(key)) is not None:
            return known
        moment = _plausible(parse_datetime(value, self.ctx.tz), what, self.ctx)
        found = (moment, moment if self.pg else sqlite_time(moment))
        if key is not None:
            if len(self._moments) >= MOMENTS_KEPT:
                self._moments.clear()
            self._moments[key] = found
        return found

    def staged(self, row: int, cells: list[CellValue]) -> StagedOrder:
        """Raises CellError with the reason when the row cannot be used."""
        short = self._count - len(cells)  # XLSX rows end at their last filled cell
        padded = (*cells, *((None,) * short), None) if short > 0 else (*cells, None)
        ext, client, placed, delivered, amount, currency, category, item, quantity = self._cells(
            padded
        )
        ctx = self.ctx
        external_id = _id(ext, "номер заказа")
        client_id = _id(client, "код клиента")
        placed_at, placed_value = self._moment(placed, "дата заказа")
        delivered_value = None
        if text(delivered):
            delivered_at, delivered_value = self._moment(delivered, "дата доставки")
            # Compared by local day: a delivery date without time is midnight of that day. Two
            # days apart in UTC are apart in any zone's days too (no clock moves that far).
            if delivered_at - placed_at < SURELY_LATER_DAY and (
                delivered_at.astimezone(ctx.tz).date() < placed_at.astimezone(ctx.tz).date()
            ):
                raise CellError(
                    f"доставка {_local(delivered_at, ctx)} раньше заказа {_local(placed_at, ctx)}"
                )
        code = text(currency).upper() or None
        if code is not None:
            code = _CURRENCIES.get(code, code)
            if len(code) != 3 or not code.isalpha():
                raise CellError(f"валюта {code!r} не распознана (ждём код ISO 4217, RUB)")
        category_text = text(category) or None
        items = None
        if item_text := text(item):
            items = items_json(item_text[:300], text(quantity) or "1", category_text)
        value = parse_amount(amount)
        category_text = category_text[:128] if category_text else None
        return (row, external_id, client_id, placed_value, delivered_value,
                value if self.pg else str(value), code, category_text, items)  # fmt: skip
