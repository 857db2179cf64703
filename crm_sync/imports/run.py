"""One import run: stream a file, parse rows, write batches, keep the rejects, record the run.

Row numbers are spreadsheet rows: the header is row 1 (or lower when title lines precede it),
the first data row is 2. Fully blank rows are skipped without a count. Each batch commits on its
own, so a file that breaks midway (a truncated XLSX, a broken CSV quote) keeps every valid row
before the break; the run's ``error`` says where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.imports.headers import ColumnMap, Kind, map_columns, recognised_count
from crm_sync.imports.parse import CellError, CellValue, text
from crm_sync.imports.reader import TableFile, open_table
from crm_sync.imports.records import (
    ClientRecord,
    OrderRecord,
    ParseContext,
    RowCells,
    client_record,
    is_blank,
    order_record,
)
from crm_sync.imports.rejects import RejectsWriter
from crm_sync.imports.upsert import BatchResult, upsert_clients, upsert_orders
from crm_sync.tables import ImportRunRow
from povtor.db import utcnow
from povtor.errors import InvalidInput

log = logging.getLogger(__name__)
runs: Table = ImportRunRow.__table__  # type: ignore[assignment]
HEADER_SEARCH_ROWS = 10  # 1C reports put a title and a blank line above the header

ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    region: str = "RU"
    timezone: str = "Europe/Moscow"
    currency: str = "RUB"
    overrides: Mapping[str, str] = field(default_factory=dict)  # from --map
    batch_size: int = 2000


@dataclass(frozen=True, slots=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int
    rejected: int
    rejects_file: Path | None

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` contract; ``rejects_file`` is null when no row was rejected."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "rejects_file": str(self.rejects_file) if self.rejects_file else None,
        }


class ImportFailed(InvalidInput):
    """The file broke midway; ``summary`` counts what was imported before the break."""

    def __init__(self, message: str, summary: ImportSummary) -> None:
        super().__init__(message)
        self.summary = summary


def _find_header(
    kind: Kind, rows: Iterator[tuple[int, list[CellValue]]]
) -> tuple[list[str], list[tuple[int, list[CellValue]]]]:
    """The header row (the one with most known column names among the first rows).

    Returns its cells and the data rows read past it while looking.
    """
    seen: list[tuple[int, list[CellValue]]] = []
    for number, cells in rows:
        if not is_blank(cells):
            seen.append((number, cells))
        if len(seen) >= HEADER_SEARCH_ROWS:
            break
    if not seen:
        raise InvalidInput("the file has no rows: nothing to import")
    scores = [recognised_count(kind, cells) for _, cells in seen]
    best = max(range(len(seen)), key=lambda i: (scores[i], -i)) if max(scores) else 0
    headers = [text(c) for c in seen[best][1]]
    return headers, seen[best + 1 :]


class _Run:
    def __init__(
        self, engine: AsyncEngine, kind: Kind, path: Path, options: ImportOptions
    ) -> None:
        self.engine = engine
        self.kind = kind
        self.options = options
        self.ctx = ParseContext(options.region, ZoneInfo(options.timezone), options.currency)
        self.rejects = RejectsWriter(path)
        self.counts = {"created": 0, "updated": 0, "unchanged": 0}
        self.batch: list[ClientRecord | OrderRecord] = []
        self.cells: dict[int, list[CellValue]] = {}

    def summary(self) -> ImportSummary:
        return ImportSummary(
            created=self.counts["created"],
            updated=self.counts["updated"],
            unchanged=self.counts["unchanged"],
            rejected=self.rejects.count,
            rejects_file=self.rejects.written,
        )

    def take(self, number: int, cells: list[CellValue], columns: ColumnMap) -> None:
        row = RowCells(columns, cells)
        try:
            if self.kind is Kind.CLIENTS:
                self.batch.append(client_record(number, row, self.ctx))
            else:
                self.batch.append(order_record(number, row, self.ctx))
        except CellError as err:
            self.rejects.add(number, str(err), cells)
            return
        if self.kind is Kind.ORDERS:
            self.cells[number] = cells  # an unknown client is only found at write time

    async def flush(self) -> None:
        if not self.batch:
            return
        now = utcnow()
        result: BatchResult
        async with self.engine.begin() as conn:
            if self.kind is Kind.CLIENTS:
                result = await upsert_clients(
                    conn,
                    [r for r in self.batch if isinstance(r, ClientRecord)],
                    default_timezone=self.options.timezone,
                    now=now,
                )
            else:
                result = await upsert_orders(
                    conn,
                    [r for r in self.batch if isinstance(r, OrderRecord)],
                    default_currency=self.options.currency,
                    now=now,
                )
        for name in self.counts:
            self.counts[name] += result.counts[name]
        for number, reason in result.rejects:
            self.rejects.add(number, reason, self.cells.get(number, []))
        self.batch.clear()
        self.cells.clear()


async def import_file(
    engine: AsyncEngine,
    kind: Kind,
    path: Path,
    options: ImportOptions | None = None,
    progress: ProgressFn | None = None,
) -> ImportSummary:
    """Import clients or orders from a CSV/XLSX file; InvalidInput if the file is unusable."""
    options = options or ImportOptions()
    with open_table(path) as table:
        return await _import_table(engine, kind, path, table, options, progress)


async def _import_table(
    engine: AsyncEngine,
    kind: Kind,
    path: Path,
    table: TableFile,
    options: ImportOptions,
    progress: ProgressFn | None,
) -> ImportSummary:
    run = _Run(engine, kind, path, options)
    rows = table.rows()
    headers, early = _find_header(kind, rows)
    columns = map_columns(kind, headers, options.overrides)
    run.rejects.set_headers(headers)
    log.info(
        "importing %s from %s (%s, %s, delimiter %r): %s",
        kind.value,
        path.name,
        table.format,
        table.encoding or "-",
        table.delimiter or "-",
        columns.described(),
    )
    async with engine.begin() as conn:
        run_id = (
            await conn.execute(
                insert(runs)
                .values(
                    kind=kind.value,
                    file=str(path),
                    started_at=utcnow(),
                    created=0,
                    updated=0,
                    unchanged=0,
                    rejected=0,
                )
                .returning(runs.c.id)
            )
        ).scalar_one()
    error: str | None = None
    try:
        for number, cells in _chain(early, rows):
            if is_blank(cells):
                continue
            run.take(number, cells, columns)
            if len(run.batch) >= options.batch_size:
                await run.flush()
                if progress is not None:
                    progress(*table.progress())
        await run.flush()
    except InvalidInput as err:
        error = str(err)
        await run.flush()  # keep the valid rows read before the break
    except BaseException as err:
        error = f"{type(err).__name__}: {err}"
        raise
    finally:
        run.rejects.close()
        summary = run.summary()
        async with engine.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    finished_at=utcnow(),
                    created=summary.created,
                    updated=summary.updated,
                    unchanged=summary.unchanged,
                    rejected=summary.rejected,
                    rejects_file=str(summary.rejects_file) if summary.rejects_file else None,
                    error=error,
                )
            )
    if progress is not None:
        progress(*table.progress())
    if error is not None:  # only an InvalidInput gets here; anything else was re-raised
        raise ImportFailed(error, summary)
    return summary


def _chain(
    first: list[tuple[int, list[CellValue]]], rest: Iterator[tuple[int, list[CellValue]]]
) -> Iterator[tuple[int, list[CellValue]]]:
    yield from first
    yield from rest
