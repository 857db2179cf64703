"""One source row -> a typed client record, or the reason it is rejected (orders: order_rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from crm_sync.imports.consent import parse_consent
from crm_sync.imports.geo import parse_timezone, timezone_for_city
from crm_sync.imports.headers import ColumnMap
from crm_sync.imports.parse import (
    CellError,
    CellValue,
    Formula,
    parse_datetime,
    parse_email,
    parse_id,
    parse_phones,
    text,
)
from povtor.domain import ChannelKind

_CHANNELS = {
    "telegram": ChannelKind.TELEGRAM,
    "телеграм": ChannelKind.TELEGRAM,
    "tg": ChannelKind.TELEGRAM,
    "call": ChannelKind.CALL,
    "звонок": ChannelKind.CALL,
    "телефон": ChannelKind.CALL,
}


@dataclass(frozen=True, slots=True)
class ParseContext:
    region: str
    tz: ZoneInfo
    currency: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """Fields left None were not given (no column, or an empty cell) and keep stored values."""

    row: int
    external_id: str
    name: str | None = None
    phones: tuple[str, ...] | None = None
    email: str | None = None
    timezone: str | None = None
    manager: str | None = None
    preferred_channel: str | None = None
    by_phone: bool = False  # the file has no client code: ``external_id`` is the first phone
    notes: tuple[str, ...] = ()  # fields dropped from an otherwise good row, with the reason
    ad_consent: bool | None = None  # consent to advertising (None: not given in the file)
    consent_at: datetime | None = None
    consent_source: str | None = None


class RowCells:
    """Access to one row's cells by field name."""

    def __init__(self, columns: ColumnMap, cells: list[CellValue]) -> None:
        self._columns = columns
        self._cells = cells

    def get(self, name: str) -> CellValue:
        index = self._columns.single.get(name)
        if index is None or index >= len(self._cells):
            return None
        return self._cells[index]

    def text(self, name: str) -> str | None:
        return text(self.get(name)) or None

    def has(self, name: str) -> bool:
        return self._columns.has(name)

    def all(self, name: str) -> list[CellValue]:
        return [self._cells[i] for i in self._columns.multi.get(name, ()) if i < len(self._cells)]


def shape_problem(cells: list[CellValue], columns: ColumnMap, *, short_ok: bool) -> str | None:
    """Why a row does not fit the header (another delimiter, a shifted row), or None.

    Trailing cells past the header may be blank; CSV rows must reach the last named column
    (XLSX rows are cut after their last filled cell, so ``short_ok``).
    """
    size = len(columns.headers)
    if len(cells) > size and not is_blank(cells[size:]):
        return (
            f"в строке {len(cells)} полей, а в заголовке {size}: "
            "лишние значения (другой разделитель или сдвинутая строка?)"
        )
    if not short_ok and len(cells) < columns.width:
        return f"в строке {len(cells)} полей, а в заголовке {size} (другой разделитель?)"
    return None


def formula_problem(cells: list[CellValue], columns: ColumnMap) -> str | None:
    """A used column holding a formula that Excel never computed, or None."""
    for index in sorted(columns.used):
        cell = cells[index] if index < len(cells) else None
        if isinstance(cell, Formula):
            return (
                f"в колонке {columns.headers[index]!r} формула {cell} без вычисленного значения: "
                "откройте файл в Excel и сохраните его"
            )
    return None


def is_blank(cells: list[CellValue]) -> bool:
    for cell in cells:  # stops at the first filled cell: most rows cost one check
        if cell is not None and cell != "" and (not isinstance(cell, str) or cell.strip()):
            return False
    return True


def client_record(row: int, cells: RowCells, ctx: ParseContext) -> ClientRecord:
    """Raises CellError with the reason when the row cannot be used."""
    by_phone = not cells.has("external_id")
    external_id = "" if by_phone else parse_id(cells.get("external_id"), "код клиента")
    name = cells.text("name")
    if name is None:
        parts = [cells.text(f) for f in ("last_name", "first_name", "middle_name")]
        name = " ".join(p for p in parts if p) or None
    phones: tuple[str, ...] = ()
    for cell in cells.all("phone"):
        phones += tuple(p for p in parse_phones(cell, ctx.region) if p not in phones)
    tz = None
    if raw_tz := cells.text("timezone"):
        tz = parse_timezone(raw_tz)
        if tz is None:
            raise CellError(f"часовой пояс {raw_tz!r} не распознан")
    elif city := cells.text("city"):
        tz = timezone_for_city(city)
    channel = None
    if raw_channel := cells.text("preferred_channel"):
        found = _CHANNELS.get(raw_channel.casefold())
        if found is None:
            raise CellError(f"канал {raw_channel!r} не распознан (telegram или звонок)")
        channel = found.value
    if by_phone:
        if not phones:
            raise CellError("нет ни кода клиента, ни телефона")
        external_id = phones[0]
    notes: tuple[str, ...] = ()
    try:
        email = parse_email(cells.get("email"))
    except CellError as err:  # the client is still worth having
        email, notes = None, (f"{err}: клиент импортирован без e-mail",)
    return ClientRecord(
        row=row,
        external_id=external_id,
        name=name[:300] if name else None,
        phones=phones or None,
        email=email,
        timezone=tz,
        manager=(cells.text("manager") or "")[:128] or None,
        preferred_channel=channel,
        by_phone=by_phone,
        notes=notes,
        **_consent(cells, ctx),
    )


def _consent(cells: RowCells, ctx: ParseContext) -> dict[str, Any]:
    granted = parse_consent(cells.get("ad_consent"))
    if granted is None:
        return {}
    raw_at = cells.get("consent_date")
    return {
        "ad_consent": granted,
        "consent_at": parse_datetime(raw_at, ctx.tz) if text(raw_at) else None,
        "consent_source": (cells.text("consent_source") or "")[:48] or None,
    }
