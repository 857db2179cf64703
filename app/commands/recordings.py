"""``povtor recordings sweep|recover``: one-off retention sweep and crash recovery."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from povtor.settings import Settings
    from voice.recording_archive import RecoveryReport
    from voice.retention import SweepReport

app = typer.Typer(help="Call recordings: retention and crash recovery.", no_args_is_help=True)


async def _sweep(settings: Settings, days: int) -> SweepReport:
    from povtor.db import create_engine, session_factory
    from voice.call_store import CallStore
    from voice.retention import sweep_recordings
    from voice.storage import storages_from_settings

    engine = create_engine(settings.db_url)
    try:
        store = CallStore(session_factory(engine))
        return await sweep_recordings(store, storages_from_settings(settings), days)
    finally:
        await engine.dispose()


async def _recover(
    settings: Settings, worker_id: str | None, older_than_min: float | None
) -> RecoveryReport:
    from povtor.db import create_engine, session_factory, utcnow
    from voice.call_store import CallStore
    from voice.recording_archive import incoming_folder, recover_after_restart
    from voice.storage import storage_from_settings

    started_before = None
    if older_than_min is not None:
        started_before = utcnow() - timedelta(minutes=older_than_min)
    engine = create_engine(settings.db_url)
    try:
        store = CallStore(session_factory(engine))
        return await recover_after_restart(
            store,
            storage_from_settings(settings),
            incoming_folder(settings),
            worker_id=worker_id,
            started_before=started_before,
        )
    finally:
        await engine.dispose()


@app.command("sweep")
def sweep(
    days: int | None = typer.Option(
        None, help="Retention in days (default POVTOR_RECORDINGS_RETENTION_DAYS; 0 keeps all)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Delete recordings older than the retention period (storage first, then the row)."""
    from povtor.settings import Settings

    settings = Settings()
    retention = settings.recordings.retention_days if days is None else days
    report = asyncio.run(_sweep(settings, retention))
    summary = {"deleted": report.deleted, "failed": report.failed, "skipped": report.skipped}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"{report.deleted} deleted, {report.failed} failed, {report.skipped} skipped"
            f" (retention {retention} days)"
        )
    if report.failed:
        raise typer.Exit(1)


@app.command("recover")
def recover(
    worker_id: str | None = typer.Option(None, help="Mark this dead worker's calls interrupted."),
    older_than_min: float | None = typer.Option(
        None, help="Mark calls still active after this many minutes interrupted."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Finish recordings a killed worker left and link them to their calls.

    Without options only files of calls that are already over are handled. Timeline events
    of interrupted calls are written by the worker's own recovery at start, not here. Exits 1
    when files are left over (storage down, a file without its call), so cron notices.
    """
    from povtor.settings import Settings

    report = asyncio.run(_recover(Settings(), worker_id, older_than_min))
    summary = {
        "interrupted": [c.uuid for c in report.interrupted],
        "archived": [r.uri for r in report.archived],
        "left": list(report.left),
    }
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        typer.echo(
            f"{len(report.interrupted)} calls marked interrupted, {len(report.archived)}"
            f" recordings archived, {len(report.left)} files left"
        )
    if report.left:
        raise typer.Exit(1)
