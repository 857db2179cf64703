"""`povtor demo`: the whole loop on this machine, against local stand-ins only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer


def demo(
    seconds: float | None = typer.Option(
        None, "--seconds", min=1, help="Stop by itself after this long (else Ctrl-C)."
    ),
    folder: Path = typer.Option(
        Path("data/demo"), "--dir", help="The demo's store, recordings and logs (emptied first)."
    ),
    clients: int = typer.Option(
        40, "--clients", min=1, max=120, help="Generated clients besides the named ones."
    ),
    dashboard_port: int = typer.Option(8080, "--dashboard-port"),
    sandbox_port: int = typer.Option(8081, "--sandbox-port"),
    metrics_port: int = typer.Option(9108, "--metrics-port"),
    clock_start: datetime | None = typer.Option(
        None,
        "--clock-start",
        formats=["%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M"],
        help="What the demo's clock shows at the start, e.g. 2026-12-07T06:00+0300 "
        "(default: now; no zone: UTC). Contact hours follow this clock.",
    ),
    clock_speed: int = typer.Option(
        120, "--clock-speed", min=1, help="How many times faster the demo's clock runs."
    ),
) -> None:
    """Run the worker against a local Telegram emulator and SIP phones, time compressed.

    Ignores the Telegram token and SIP trunk of .env and the environment; nothing leaves
    127.0.0.1. The store stays in --dir for `povtor` commands afterwards."""
    import asyncio

    from rich.console import Console

    from app.demo.run import DemoOptions, run_demo
    from povtor.errors import ConfigError

    options = DemoOptions(
        folder=folder,
        seconds=seconds,
        clients=clients,
        dashboard_port=dashboard_port,
        sandbox_port=sandbox_port,
        metrics_port=metrics_port,
        clock_start=clock_start
        if clock_start is None or clock_start.tzinfo
        else clock_start.replace(tzinfo=UTC),
        clock_speed=clock_speed,
    )
    try:
        asyncio.run(run_demo(options, Console()))
    except* ConfigError as group:
        for err in group.exceptions:
            typer.echo(f"povtor demo: {err}", err=True)
        raise typer.Exit(2) from None
