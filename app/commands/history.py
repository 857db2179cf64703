"""``povtor import``, ``povtor client show``, ``povtor report``, ``povtor demo-data``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import typer

from povtor.errors import InvalidInput, PovtorError
from povtor.settings import Settings

T = TypeVar("T")

import_app = typer.Typer(help="Import clients or orders from CSV/XLSX.", no_args_is_help=True)
client_app = typer.Typer(help="Look at one client.", no_args_is_help=True)

MAP_HELP = "Column to field, e.g. --map 'Мобильный=phone' (repeatable; '-' skips a column)."
JSON_HELP = "Print a JSON object as the last line of stdout."


def _run_db(work: Callable[[Any, Settings], Awaitable[T]]) -> T:
    """Run ``work(engine, settings)``, turning store failures into a clear message."""
    from sqlalchemy.exc import DBAPIError

    from app.commands.database import open_engine
    from povtor.logs import setup_logging

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)

    async def main() -> T:
        if settings.database_url is None:
            settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        async with open_engine(settings) as engine:
            try:
                return await work(engine, settings)
            except DBAPIError as err:
                raise PovtorError(
                    f"database error (is the schema created? run `povtor db upgrade`): {err.orig}"
                ) from err

    return asyncio.run(main())


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(1)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _import(kind_name: str, file: Path, mapping: list[str], as_json: bool) -> None:
    from crm_sync.imports.headers import Kind, parse_overrides
    from crm_sync.imports.run import ImportFailed, ImportOptions, ImportSummary, import_file

    kind = Kind(kind_name)

    async def work(engine: Any, settings: Settings) -> ImportSummary:
        from app.erasure import erasure_ledger
        from povtor.db import session_factory

        erased = await erasure_ledger(settings, session_factory(engine)).suppression_list()
        options = ImportOptions(
            region=settings.default_region,
            timezone=settings.default_timezone,
            currency=settings.currency,
            overrides=parse_overrides(mapping),
            erased=erased,
        )
        with _progress(f"{kind.value}: {file.name}") as progress:
            return await import_file(engine, kind, file, options, progress)

    try:
        summary = _run_db(work)
    except ImportFailed as err:
        _print_summary(err.summary, as_json)
        raise _fail(err) from err
    except PovtorError as err:
        raise _fail(err) from err
    _print_summary(summary, as_json)


def _print_summary(summary: Any, as_json: bool) -> None:
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        typer.echo(json.dumps(summary.as_json(), ensure_ascii=False))
        return
    typer.echo(
        f"created {summary.created}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, rejected {summary.rejected}"
    )
    if summary.rejects_file:
        typer.echo(f"rejected rows with reasons: {summary.rejects_file}")
    if summary.erased:
        typer.echo(f"{summary.erased} rows skipped: clients erased on request")
    if summary.notes_file:
        typer.echo(f"{summary.noted} rows imported with a field dropped: {summary.notes_file}")


@import_app.command("clients")
def import_clients(
    file: Path = typer.Argument(..., help="CSV or XLSX file."),
    mapping: list[str] = typer.Option([], "--map", help=MAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import or update clients (idempotent: re-importing the same file changes nothing)."""
    _import("clients", file, mapping, as_json)


@import_app.command("orders")
def import_orders(
    file: Path = typer.Argument(..., help="CSV or XLSX file."),
    mapping: list[str] = typer.Option([], "--map", help=MAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import or update orders of known clients (each also lands in the client's timeline)."""
    _import("orders", file, mapping, as_json)


@client_app.command("show")
def client_show(
    external_id: str = typer.Argument(..., help="The client's id in your CRM / 1C."),
    limit: int = typer.Option(50, help="How many orders and timeline entries."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The client with phones, orders and timeline."""
    from crm_sync.history.client_view import load_client_view, render_client_view

    async def work(engine: Any, _settings: Settings) -> dict[str, Any]:
        return await load_client_view(engine, external_id, limit)

    try:
        view = _run_db(work)
    except PovtorError as err:
        raise _fail(err) from err
    if as_json:
        typer.echo(json.dumps(view, ensure_ascii=False))
    else:
        render_client_view(view)


def report_command(
    date_from: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD."),
    date_to: str | None = typer.Option(None, "--to", help="Last day (inclusive), YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    store: bool = typer.Option(
        False,
        "--store",
        help="Compute and store the reports of the dashboard's periods (30, 90, 365 days, "
        "all time) now, as the worker does in the background.",
    ),
) -> None:
    """Repeat-sales figures: NPS, retention, repeat purchases, AOV, LTV, ABC/XYZ, tenure."""
    from crm_sync.metrics.period import period_from_dates
    from crm_sync.metrics.render import render_report
    from crm_sync.metrics.reports import SqlReports

    if store:
        if date_from or date_to or as_json:
            raise _fail(
                InvalidInput("--store stores the dashboard's periods: no --from/--to/--json")
            )
        _store_reports()
        return

    async def work(engine: Any, settings: Settings) -> Any:
        start, end = period_from_dates(_date(date_from), _date(date_to), settings.default_timezone)
        return await SqlReports(engine, settings.default_timezone).report(start, end)

    try:
        report = _run_db(work)
    except PovtorError as err:
        raise _fail(err) from err
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        render_report(report)


def _store_reports() -> None:
    from crm_sync.metrics.snapshots import ReportSnapshots

    async def work(engine: Any, settings: Settings) -> Any:
        return await ReportSnapshots(engine, settings.default_timezone).refresh()

    try:
        stored = _run_db(work)
    except PovtorError as err:
        raise _fail(err) from err
    for snapshot in stored:
        typer.echo(f"stored {snapshot.period}: {snapshot.first} .. {snapshot.last}")


def _today() -> date:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(Settings().default_timezone)).date()


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD)") from err


def demo_data_command(
    clients: int = typer.Option(..., "--clients", min=1, help="How many clients."),
    seed: int = typer.Option(1, "--seed", help="Same seed and --until, same data."),
    until: str | None = typer.Option(None, "--until", help="Last day of history (default today)."),
    csv_dir: Path | None = typer.Option(
        None, "--csv", help="Write clients.csv and orders.csv here instead of the database."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Fill the store with a realistic synthetic business (or write it as import CSVs)."""
    from crm_sync.demo.generate import DemoSpec
    from crm_sync.demo.load import load_demo, write_demo_csv

    try:
        spec = DemoSpec(clients=clients, seed=seed, until=_date(until) or _today())
        if csv_dir is not None:
            counts = write_demo_csv(spec, csv_dir)
        else:
            counts = _run_db(lambda engine, _s: load_demo(engine, spec))
    except PovtorError as err:
        raise _fail(err) from err
    if as_json:
        typer.echo(json.dumps(counts, ensure_ascii=False))
    else:
        typer.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
