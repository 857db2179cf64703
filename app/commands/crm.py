"""``povtor crm status|retry|sync --once``: the CRM sync as a manager or operator sees it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import typer

T = TypeVar("T")

app = typer.Typer(
    help="Outcome sync to the external CRM (Bitrix24, amoCRM).", no_args_is_help=True
)

JSON_HELP = "Print one JSON object on stdout."
CONNECTOR_HELP = "Connector to look at (default: POVTOR_CRM_KIND)."
EXIT_FAILED = 1  # sync --once: some events failed, or the CRM could not be reached
EXIT_BUSY = 3  # sync --once: another worker holds the sync


def _run(work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``work(settings)`` against the database; failures become one line on stderr."""
    from povtor.errors import PovtorError
    from povtor.logs import setup_logging
    from povtor.settings import Settings

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        return asyncio.run(work(settings))
    except PovtorError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None


async def _with_sessions(settings: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    from sqlalchemy.exc import DBAPIError

    from povtor.db import create_engine, session_factory
    from povtor.errors import StoreError

    engine = create_engine(settings.db_url)
    try:
        return await work(session_factory(engine))
    except DBAPIError as err:
        raise StoreError(
            f"database error (is the schema created? run `povtor db upgrade`): {err.orig}"
        ) from err
    finally:
        await engine.dispose()


def _connector_name(settings: Any, explicit: str | None) -> str:
    from crm_sync.outbound.build import crm_kind
    from povtor.errors import ConfigError

    name = explicit or crm_kind(settings.crm)
    if name is None:
        raise ConfigError("no CRM configured: set POVTOR_CRM_KIND, or pass --connector")
    return name


@app.command("status")
def status(
    connector: str | None = typer.Option(None, "--connector", help=CONNECTOR_HELP),
    errors: int = typer.Option(10, "--errors", min=0, help="How many recent errors to show."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Events by state (pending, sending, done, failed), the backlog and the last errors."""
    from crm_sync.history.timeline_feed import SqlTimelineFeed
    from crm_sync.outbound.state import PushState

    async def work(settings: Any) -> Any:
        name = _connector_name(settings, connector)
        return await _with_sessions(
            settings,
            lambda sessions: PushState(sessions, name).status(
                SqlTimelineFeed(sessions), errors=errors
            ),
        )

    st = _run(work)
    report = {
        "connector": st.connector,
        "cursor": st.cursor,
        "head": st.head,
        "backlog": max(0, st.head - (st.cursor or 0)) if st.cursor is not None else None,
        "counts": dict(st.counts),
        "worker": st.owner,
        "lease_until": st.lease_until.isoformat() if st.lease_until else None,
        "last_errors": [
            {
                "event_id": f.event_id,
                "client_id": f.client_id,
                "kind": f.kind,
                "state": f.state,
                "attempts": f.attempts,
                "error": f.error,
                "at": f.at.isoformat(),
            }
            for f in st.errors
        ],
    }
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    counts = ", ".join(f"{k} {v}" for k, v in report["counts"].items())
    typer.echo(f"{st.connector}: {counts}")
    if st.cursor is None:
        typer.echo("the sync has not run yet")
    else:
        typer.echo(f"timeline events not yet looked at: {report['backlog']}")
    if st.owner:
        typer.echo(f"synced by {st.owner} (lease until {report['lease_until']})")
    for f in st.errors:
        typer.echo(
            f"  event #{f.event_id} ({f.kind}, client #{f.client_id}) {f.state}, "
            f"{f.attempts} attempt(s), {f.at:%Y-%m-%d %H:%M} UTC: {f.error}"
        )


@app.command("retry")
def retry(
    event: list[int] = typer.Option([], "--event", help="Only these event ids (repeatable)."),
    connector: str | None = typer.Option(None, "--connector", help=CONNECTOR_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Failed events back to pending, with fresh attempts (after fixing the cause)."""
    from crm_sync.outbound.state import PushState
    from povtor.db import utcnow

    async def work(settings: Any) -> int:
        name = _connector_name(settings, connector)
        return await _with_sessions(
            settings, lambda sessions: PushState(sessions, name).retry_failed(utcnow(), event)
        )

    count = _run(work)
    typer.echo(json.dumps({"retried": count}) if as_json else f"{count} event(s) queued again")


@app.command("sync")
def sync(
    once: bool = typer.Option(False, "--once", help="One full pass, then exit."),
    wait: float = typer.Option(
        0.0, "--wait", min=0, help="Wait this long for another worker's turn to end."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Push everything queued and due to the CRM now (`povtor run` does it continuously).

    Exit status: 0 everything pushed, 1 some events failed or are still pending (the CRM is
    down or asked to wait; see `povtor crm status`), 3 another worker is syncing."""
    if not once:
        typer.echo("povtor crm sync: pass --once (the worker, `povtor run`, syncs all along)")
        raise typer.Exit(2)
    from crm_sync.history.store import SqlHistoryStore
    from crm_sync.history.timeline_feed import SqlTimelineFeed
    from crm_sync.outbound.build import build_sync

    owner = f"cli:{socket.gethostname()}:{os.getpid()}"

    async def work(settings: Any) -> Any:
        async def go(sessions: Any) -> Any:
            sync = build_sync(
                settings,
                sessions,
                SqlHistoryStore(sessions),
                feed=SqlTimelineFeed(sessions),
                owner=owner,
            )
            try:
                deadline = asyncio.get_running_loop().time() + wait
                while True:
                    report = await sync.sync_once()
                    if report.held or asyncio.get_running_loop().time() >= deadline:
                        status = await sync.state.status(sync.feed, errors=0)
                        return sync.connector.name, report, status.counts
                    await asyncio.sleep(min(1.0, wait))  # another worker's lease runs out
            finally:
                await sync.connector.aclose()

        return await _with_sessions(settings, go)

    name, report, counts = _run(work)
    summary = {
        "connector": name,
        "held": report.held,
        "scanned": report.scanned,
        "queued": report.queued,
        "pushed": report.pushed,
        "retried": report.retried,
        "failed": report.failed,
        "pending": counts["pending"],
    }
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    elif not report.held:
        typer.echo("another worker is syncing this CRM now; nothing done", err=True)
    else:
        typer.echo(
            f"{name}: {report.scanned} events read, {report.queued} queued, "
            f"{report.pushed} pushed, {report.failed} failed, {counts['pending']} still pending"
        )
        for error in dict.fromkeys(report.errors):
            typer.echo(f"  {error}", err=True)
    if not report.held:
        raise typer.Exit(EXIT_BUSY)
    if report.failed or counts["pending"]:
        raise typer.Exit(EXIT_FAILED)
