"""One import run: stream a file, parse rows, write batches, keep the rejects, record the run.

Row numbers are spreadsheet rows: the header is row 1 (or lower when title lines precede it),
the first data row is 2. Fully blank rows are skipped without a count. Batches commit as they go
(each one: 20,000 rows on PostgreSQL, 10,000 on SQLite), so a file that breaks midway (a truncated
XLSX) keeps every valid row before the break; the run's ``error`` says where it stopped. A bad
line (an open quote, a NUL byte, a row that does not fit the header) is one rejected row and
reading goes on. A batch the database refuses is split until the refused rows are found: they
are rejected with the database's reason (its error class, never the values) and the rest is
written. Batch N+1 is read and parsed in a worker thread while batch N is merged (from when its
rows are staged: see ``_Run.write``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm_sync.history.tables import ImportRunRow
from crm_sync.imports.consent import write_consents
from crm_sync.imports.headers import ColumnMap, Kind, map_columns, recognised_count
from crm_sync.imports.order_batches import drop_staging, prepare_staging, write_orders
from crm_sync.imports.order_rows import OrderRows, StagedOrder
from crm_sync.imports.parse import CellError, CellValue, text
from crm_sync.imports.reader import BrokenRow, TableFile, open_table
from crm_sync.imports.records import (
    ClientRecord,
    ParseContext,
    RowCells,
    client_record,
    formula_problem,
    is_blank,
    shape_problem,
)
from crm_sync.imports.rejects import NOTES_SUFFIX, RejectsWriter
from crm_sync.imports.upsert import (
    BatchResult,
    db_error_kind,
    upsert_clients,
    write_isolated,
)
from povtor.db import table_of, utcnow
from povtor.errors import InvalidInput
from povtor.logs import mask_text
from povtor.suppression import SuppressionList

log = logging.getLogger(__name__)
runs = table_of(ImportRunRow)
SQLITE_CACHE_KIB = 48 * 1024  # 48 MiB: the hot parts of the time indexes; peak RSS < 300 MB
# WAL pages between checkpoints while importing (256 MiB; 1,000 otherwise): each checkpoint
# writes the pages back and syncs the file, and an import re-dirties the same index pages
# (the time index on orders all over), which one checkpoint writes once however often they
# were committed. 16,384 pages instead of 1,000: the batch statements of 229,614 orders
# replayed alone took 0.88x the CPU, 0.71-0.74x the time; 65,536 instead of 16,384, in process,
# 1,148,851 orders: commits 8.3-9.4 s instead of 10.9-13.7 s. The import checkpoints what it
# left at its end (without waiting for readers), so the next writer does not pay for it.
SQLITE_CHECKPOINT_PAGES = 65_536
PG_BATCH_ROWS = 20_000  # fewer, larger statements (COPY, joins) per run
SQLITE_BATCH_ROWS = 10_000  # two batches are in memory at a time: peak RSS < 300 MB
# Every batch: with 50,000-row transactions an import of 229,614 orders took 1.09-1.18 times as
# long as the code before, which (unintended) committed every 10,000-row batch; with a commit
# per batch, 0.66-1.12 (alternated runs; why was not measured).
SQLITE_COMMIT_ROWS = SQLITE_BATCH_ROWS
GC_THRESHOLD = 200_000
HEADER_SEARCH_ROWS = 10  # 1C reports put a title and a blank line above the header

ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    region: str = "RU"
    timezone: str = "Europe/Moscow"
    currency: str = "RUB"
    overrides: Mapping[str, str] = field(default_factory=dict)  # from --map
    batch_size: int | None = None  # None: 20,000 rows on PostgreSQL, 10,000 on SQLite
    commit_rows: int | None = None  # None: every batch on PostgreSQL, SQLITE_COMMIT_ROWS on SQLite
    # clients erased on request (152-FZ): their rows are skipped, counted as ``erased``
    erased: SuppressionList | None = None


@dataclass(frozen=True, slots=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int
    rejected: int
    rejects_file: Path | None
    noted: int = 0  # imported with a field dropped (a bad e-mail), listed in ``notes_file``
    notes_file: Path | None = None
    warnings: tuple[str, ...] = ()  # about the file as a whole (duplicate columns)
    erased: int = 0  # rows of clients erased on request, skipped (not errors)

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` contract; ``rejects_file`` is null when no row was rejected;
        ``erased`` (rows of clients erased on request, skipped) only when there were some."""
        found: dict[str, Any] = {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "rejects_file": str(self.rejects_file) if self.rejects_file else None,
        }
        if self.erased:
            found["erased"] = self.erased
        return found


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


@dataclass
class _Batch:
    """Rows parsed off the event loop, ready to write; ``error`` ends the file early."""

    records: list[ClientRecord] = field(default_factory=list)  # clients
    staged: list[StagedOrder] = field(default_factory=list)  # orders, driver values
    rejects: list[tuple[int, str, list[CellValue]]] = field(default_factory=list)
    cells: dict[int, list[CellValue]] = field(default_factory=dict)  # orders: for write rejects
    erased: int = 0  # rows of erased clients, skipped
    progress: tuple[int, int | None] = (0, None)
    error: str | None = None
    last: bool = False


class _Parser:
    """Reads and parses one batch at a time, in a worker thread while the last one is written.

    An order id repeated within a batch waits for the next batch (with every later row of that
    id), so each batch holds distinct ids; rows of different ids do not affect each other, so
    the outcome is the file order's ("last row wins").
    """

    def __init__(
        self,
        kind: Kind,
        table: TableFile,
        rows: Iterator[tuple[int, list[CellValue]]],
        columns: ColumnMap,
        options: ImportOptions,
        dialect: str,
    ) -> None:
        self.kind = kind
        self.table = table
        self.rows = rows
        self.columns = columns
        self.options = options
        self.dialect = dialect
        self.ctx = ParseContext(options.region, ZoneInfo(options.timezone), options.currency)
        self.orders = OrderRows(columns, self.ctx)
        self.waiting: list[tuple[StagedOrder, list[CellValue]]] = []
        self.done = False
        self.error: str | None = None
        self.erased = options.erased if options.erased else None  # None: nobody erased

    def next_batch(self) -> _Batch:
        batch = _Batch()
        ids: set[str] = set()
        held: list[tuple[StagedOrder, list[CellValue]]] = []
        held_ids: set[str] = set()
        orders = batch.staged

        def add_order(staged: StagedOrder, cells: list[CellValue]) -> None:
            external_id = staged[1]
            if external_id in ids or external_id in held_ids:
                held.append((staged, cells))
                held_ids.add(external_id)
                return
            ids.add(external_id)
            orders.append(staged)
            batch.cells[staged[0]] = cells

        waiting, self.waiting = self.waiting, []
        for record, cells in waiting:
            add_order(record, cells)
        size = self.options.batch_size or (
            PG_BATCH_ROWS if self.dialect == "postgresql" else SQLITE_BATCH_ROWS
        )
        fits, short_ok = len(self.columns.headers), self.table.format != "csv"
        try:
            while not self.done and len(orders) + len(batch.records) < size:
                item = next(self.rows, None)
                if item is None:
                    self.done = True
                    break
                number, cells = item
                if is_blank(cells):
                    continue
                if cells.__class__ is list and len(cells) == fits:
                    problem = None  # the header's shape: nearly every row
                elif isinstance(cells, BrokenRow):
                    problem = cells.reason
                else:
                    problem = shape_problem(cells, self.columns, short_ok=short_ok)
                if problem is None and self.table.has_formulas:
                    problem = formula_problem(cells, self.columns)
                if problem is not None:
                    batch.rejects.append((number, problem, cells))
                    continue
                try:
                    if self.kind is Kind.CLIENTS:
                        row = RowCells(self.columns, cells)
                        client = client_record(number, row, self.ctx)
                        if self.erased and self.erased.matches(
                            client.phones or (), client.external_id
                        ):
                            batch.erased += 1
                            continue
                        batch.records.append(client)
                    else:
                        staged = self.orders.staged(number, cells)
                        if self.erased and self.erased.matches((), staged[2]):
                            batch.erased += 1
                            continue
                        add_order(staged, cells)
                except CellError as err:
                    batch.rejects.append((number, str(err), cells))
        except InvalidInput as err:
            self.error = str(err)
            self.done = True
        self.waiting = held
        batch.progress = self.table.progress()
        batch.last = self.done and not self.waiting
        batch.error = self.error if batch.last else None
        return batch


class _ParseAhead:
    """The parser's next batch, parsed in a worker thread from when ``start`` is called."""

    def __init__(self, parser: _Parser, pool: ThreadPoolExecutor) -> None:
        self.parser = parser
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.pending = self.loop.run_in_executor(pool, parser.next_batch)
        self.started = True

    async def take(self) -> _Batch:
        batch = await self.pending
        self.started = batch.last  # nothing follows the last batch
        return batch

    def start(self) -> None:
        """Start parsing the next batch, once per batch taken."""
        if not self.started:
            self.started = True
            self.pending = self.loop.run_in_executor(self.pool, self.parser.next_batch)

    async def settle(self) -> None:
        """After a failed write: let the parser thread finish; the write's error is the one
        raised."""
        if not self.pending.done():
            await asyncio.wait([self.pending])
            if not self.pending.cancelled():
                self.pending.exception()  # retrieved


class _Run:
    def __init__(self, kind: Kind, path: Path, options: ImportOptions, dialect: str) -> None:
        self.kind = kind
        self.options = options
        self.dialect = dialect
        self.rejects = RejectsWriter(path)
        self.notes = RejectsWriter(path, NOTES_SUFFIX)
        self.warnings: tuple[str, ...] = ()
        self.counts = {"created": 0, "updated": 0, "unchanged": 0}  # committed
        self.pending: Counter[str] = Counter()  # written, not committed yet
        self.uncommitted = 0
        self.batches = 0
        self.erased = 0
        self.commit_rows = options.commit_rows or (
            SQLITE_COMMIT_ROWS if dialect == "sqlite" else 1
        )

    def summary(self) -> ImportSummary:
        return ImportSummary(
            created=self.counts["created"],
            updated=self.counts["updated"],
            unchanged=self.counts["unchanged"],
            rejected=self.rejects.count,
            rejects_file=self.rejects.written,
            noted=self.notes.count,
            notes_file=self.notes.written,
            warnings=self.warnings,
            erased=self.erased,
        )

    async def write(
        self, conn: AsyncConnection, batch: _Batch, loaded: Callable[[], None] = lambda: None
    ) -> None:
        """Write one batch; commit every ``commit_rows`` rows and at the end of the file.

        ``loaded`` is called when the batch's rows are in the database's staging table (orders)
        or before they are written (clients): the next batch is parsed from then on. Not
        before: while a thread parses, the loading (SQLite's executemany takes the GIL back for
        every row; asyncpg encodes COPY data) and every round trip wait for the GIL, whereas
        the statements that merge the staged rows run in the database without it."""
        result = BatchResult()
        self.erased += batch.erased
        if batch.records or batch.staged:
            now = utcnow()
            if not conn.in_transaction():
                await conn.begin()
                if self.dialect == "sqlite":
                    # sqlite3 begins a transaction only before DML, not before the batch's
                    # SAVEPOINT: without BEGIN each batch is a transaction of its own,
                    # committed when its savepoint is released.
                    await conn.exec_driver_sql("BEGIN")
            items: list[Any] = list(batch.records or batch.staged)
            result = await write_isolated(
                conn,
                items,
                lambda part: self._write_rows(conn, part, now, loaded),
                (lambda r: r.row) if self.kind is Kind.CLIENTS else (lambda r: r[0]),
            )
            self.batches += 1
            self.uncommitted += len(batch.records) + len(batch.staged)
        self.pending.update(result.counts)
        if conn.in_transaction() and (
            batch.last or batch.error is not None or self.uncommitted >= self.commit_rows
        ):
            await conn.commit()
            self.uncommitted = 0
        if not conn.in_transaction():
            for name in self.counts:
                self.counts[name] += self.pending[name]
            self.pending.clear()
        cells_of = batch.cells or {r.row: [] for r in batch.records}
        found = [(n, reason, cells_of.get(n, [])) for n, reason in result.rejects]
        for number, reason, cells in sorted(batch.rejects + found, key=lambda r: r[0]):
            self.rejects.add(number, reason, cells)
        for record in batch.records:
            for note in record.notes:
                self.notes.add(record.row, note, [])

    async def _write_rows(
        self, conn: AsyncConnection, items: list[Any], now: Any, loaded: Callable[[], None]
    ) -> BatchResult:
        if self.kind is Kind.CLIENTS:
            loaded()
            result = await upsert_clients(
                conn, items, default_timezone=self.options.timezone, now=now
            )
            await write_consents(conn, items, now=now)
            return result
        return await write_orders(
            conn,
            items,
            default_currency=self.options.currency,
            now=now,
            analyze=self.batches == 0,
            loaded=loaded,
        )


async def import_file(
    engine: AsyncEngine,
    kind: Kind,
    path: Path,
    options: ImportOptions | None = None,
    progress: ProgressFn | None = None,
) -> ImportSummary:
    """Import clients or orders from a CSV/XLSX file; InvalidInput if the file is unusable."""
    options = options or ImportOptions()
    with open_table(path) as table, _few_gc_passes():
        return await _import_table(engine, kind, path, table, options, progress)


@contextmanager
def _few_gc_passes() -> Iterator[None]:
    """Rows are short-lived and make no cycles, yet they trigger a collection every 700
    allocations (a fifth of the CPU time of an import): collect rarely while importing."""
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


async def _import_table(
    engine: AsyncEngine,
    kind: Kind,
    path: Path,
    table: TableFile,
    options: ImportOptions,
    progress: ProgressFn | None,
) -> ImportSummary:
    run = _Run(kind, path, options, engine.dialect.name)
    rows = table.rows()
    headers, early = _find_header(kind, rows)
    columns = map_columns(kind, headers, options.overrides)
    table.width, table.columns = columns.width, len(headers)
    run.rejects.set_headers(headers)
    run.notes.set_headers(headers)
    run.warnings = columns.duplicates
    for warning in columns.duplicates:
        log.warning("%s: %s", path.name, warning)
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
    parser = _Parser(kind, table, _chain(early, rows), columns, options, engine.dialect.name)
    error: str | None = None
    try:
        async with engine.connect() as conn:
            await _prepare(conn, kind)
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-parse") as pool:
                ahead = _ParseAhead(parser, pool)
                try:
                    while True:
                        batch = await ahead.take()
                        # The next batch is parsed while this one is merged: from the moment
                        # its rows are staged (or before a batch of clients), see _Run.write.
                        await run.write(conn, batch, ahead.start)
                        ahead.start()  # a batch with nothing to write
                        if progress is not None:
                            progress(*batch.progress)
                        if batch.error is not None:
                            error = batch.error  # valid rows before the break are kept
                            break
                        if batch.last:
                            break
                finally:
                    await ahead.settle()
            await _finish(conn, kind)
    except DBAPIError as err:  # not a row's fault (the database went away): say so, keep counts
        error = f"the database failed: {db_error_kind(err)}"
    except BaseException as err:
        error = mask_text(f"{type(err).__name__}: {err}")
        raise
    finally:
        run.rejects.close()
        run.notes.close()
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
    if error is not None:  # a broken file or a failed database; anything else was re-raised
        raise ImportFailed(error, summary)
    return summary


async def _prepare(conn: AsyncConnection, kind: Kind) -> None:
    """The import's own connection: on SQLite a page cache that holds the growing indexes
    (the default 2 MB makes every insert a read), temp tables in memory, fewer checkpoints;
    staging for orders."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        await conn.exec_driver_sql("PRAGMA temp_store = MEMORY")
        await conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
    if kind is Kind.ORDERS:
        await prepare_staging(conn)
    await conn.commit()


async def _finish(conn: AsyncConnection, kind: Kind) -> None:
    if kind is Kind.ORDERS:
        await drop_staging(conn)
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("PRAGMA cache_size = -2000")  # back to the defaults
        await conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 1000")
    await conn.commit()
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def _chain(
    first: list[tuple[int, list[CellValue]]], rest: Iterator[tuple[int, list[CellValue]]]
) -> Iterator[tuple[int, list[CellValue]]]:
    yield from first
    yield from rest
