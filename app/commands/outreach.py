"""`povtor plan` (who would be contacted, and why) and `povtor attempts` (the queue)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from povtor.domain import AttemptState, ChannelKind, Purpose
from povtor.ports import HistoryStore, PlanningSource
from povtor.settings import Settings

Sessions = async_sessionmaker[AsyncSession]


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise typer.BadParameter("give an offset, e.g. 2026-03-03T12:00:00+03:00")
    return parsed


def _channels(settings: Settings) -> frozenset[ChannelKind]:
    configured = set()
    if settings.telegram.enabled:
        configured.add(ChannelKind.TELEGRAM)
    if settings.sip.enabled:
        configured.add(ChannelKind.CALL)
    return frozenset(configured or ChannelKind)  # nothing configured yet: plan for both


@dataclass(frozen=True)
class Wiring:
    """How the commands reach the history store (given by the composition root, since
    outreach does not import crm_sync)."""

    planning_source: Callable[[Sessions], PlanningSource]
    history_store: Callable[[Sessions], HistoryStore]


async def _plan(wiring: Wiring, dry_run: bool, as_json: bool, as_of: datetime | None) -> int:
    from app.commands.database import open_engine
    from app.erasure import erasure_ledger
    from outreach.holiday_calendar import holiday_check
    from outreach.planner import Planner
    from outreach.queue import AttemptQueue
    from outreach.rules import contact_rules, planning_rules
    from povtor.db import session_factory, utcnow

    settings = Settings()
    async with open_engine(settings) as engine:
        sessions = session_factory(engine)
        out = settings.outreach
        queue = AttemptQueue(sessions, worker_id="cli", lease=timedelta(seconds=out.lease_s))
        planner = Planner(
            wiring.planning_source(sessions),
            queue,
            contact_rules(out, settings.telegram, settings.default_timezone),
            planning_rules(out),
            is_holiday=holiday_check(out.holidays_country),
            channels=_channels(settings),
            batch_size=out.plan_batch_size,
            approval_threshold=out.approval_threshold,
            erased=erasure_ledger(settings, sessions),
        )
        when = as_of or utcnow()
        if not dry_run:
            created = await planner.run_once(when)
            typer.echo(f"{created} new attempts planned", err=True)
            if planner.last_held:
                typer.echo(
                    f"more than {out.approval_threshold} at once: they wait for approval "
                    "on the dashboard's outreach page (POVTOR_OUTREACH_APPROVAL_THRESHOLD)",
                    err=True,
                )
            return created
        count = 0
        async for page in planner.pages(when):
            for item in page:
                count += 1
                if as_json:
                    typer.echo(json.dumps(item.to_json(), ensure_ascii=False))
                else:
                    c = item.candidate
                    typer.echo(
                        f"{c.external_id}\t{c.purpose.value}\t{item.channel.value}\t"
                        f"{item.not_before.isoformat()}\t{c.reason}"
                    )
        typer.echo(f"{count} contacts would be planned", err=True)
        return count


async def _attempts(
    wiring: Wiring,
    state: AttemptState | None,
    purpose: Purpose | None,
    channel: ChannelKind | None,
    client: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    from app.commands.database import open_engine
    from outreach.listing import AttemptListing
    from povtor.db import session_factory

    settings = Settings()
    async with open_engine(settings) as engine:
        sessions = session_factory(engine)
        client_ids = None
        if client is not None:
            found = await wiring.history_store(sessions).find_client(client)
            client_ids = [found.id] if found else []
        views = await AttemptListing(sessions).attempts(
            state=state, purpose=purpose, channel=channel, client_ids=client_ids, limit=limit
        )
        return [
            {
                "id": v.id,
                "client_id": v.client_id,
                "purpose": v.purpose.value,
                "channel": v.channel.value,
                "state": v.state.value,
                "attempt_no": v.attempt_no,
                "not_before": v.not_before.isoformat(),
                "last_outcome": v.last_outcome.value if v.last_outcome else None,
                "detail": v.last_detail,
                "worker": v.worker_id,
                "reason": v.reason,
            }
            for v in views
        ]


class Commands:
    """The typer commands, bound to the store wiring."""

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring

    def plan(
        self,
        dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan, write nothing."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
        as_of: str | None = typer.Option(None, "--as-of", help="Plan as of this ISO-8601 time."),
    ) -> None:
        """Who would be contacted (reorder, NPS, win-back), by which channel, when and why."""
        from povtor.logs import setup_logging

        settings = Settings()
        setup_logging(settings.log_level, settings.log_format)
        asyncio.run(_plan(self.wiring, dry_run, as_json, _as_of(as_of)))

    def attempts(
        self,
        state: AttemptState | None = typer.Option(None, "--state"),
        purpose: Purpose | None = typer.Option(None, "--purpose"),
        channel: ChannelKind | None = typer.Option(None, "--channel"),
        client: str | None = typer.Option(None, "--client", help="Client external id."),
        limit: int = typer.Option(100, "--limit", min=1),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    ) -> None:
        """List contact attempts, filtered by state, purpose, channel or client."""
        rows = asyncio.run(_attempts(self.wiring, state, purpose, channel, client, limit))
        if as_json:
            for row in rows:
                typer.echo(json.dumps(row, ensure_ascii=False))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(
            "id", "client", "purpose", "channel", "state", "try", "not before", "outcome"
        )
        for r in rows:
            table.add_row(
                str(r["id"]),
                str(r["client_id"]),
                r["purpose"],
                r["channel"],
                r["state"],
                str(r["attempt_no"]),
                r["not_before"][:16],
                r["last_outcome"] or "",
            )
        Console().print(table)
