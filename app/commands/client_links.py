"""`povtor client links --out DIR`: every client's personal Telegram deep link, in bulk.

For receipts, mailings and flyers: a CSV (``links.csv``) with each client's link and a QR code
image per client (``qr/<n>-<client id>.png``, segno, BSD). The links are signed with the key
every worker shares, like `povtor client link`, and expire after
``POVTOR_TELEGRAM_LINK_TTL_DAYS`` (the CSV says when). Composed here because it reads clients
from the history store and makes links of the bot.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import typer

SEGMENTS = ("none", "new", "repeat", "lost")
CSV_NAME = "links.csv"
QR_DIR = "qr"
COLUMNS = ("external_id", "name", "link", "qr_file", "telegram_linked", "expires")
PAGE = 1000
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class ClientLink:
    external_id: str
    name: str
    link: str
    qr_file: str
    telegram_linked: bool


def qr_name(number: int, external_id: str) -> str:
    """A file name for any client id (ids come from a CRM and may hold anything)."""
    safe = _UNSAFE.sub("_", external_id).strip("._")[:60]
    return f"{number:05d}-{safe or 'client'}.png"


def write_qr(path: Path, link: str) -> None:
    import segno

    segno.make(link, error="m").save(str(path), kind="png", scale=8, border=4)


def write_csv(path: Path, rows: Sequence[ClientLink], expires: date) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8-sig") as out:  # BOM: Excel reads UTF-8
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for row in rows:
            linked = "yes" if row.telegram_linked else "no"
            writer.writerow(
                (row.external_id, row.name, row.link, row.qr_file, linked, expires.isoformat())
            )
    os.replace(tmp, path)


async def _clients(settings: Any, engine: Any, segment: str | None) -> list[Any]:
    from crm_sync.history.retention_view import SqlRetentionView
    from crm_sync.history.store import SqlHistoryStore
    from povtor.db import session_factory
    from povtor.ports import ClientFilter

    view = SqlRetentionView(
        engine, SqlHistoryStore(session_factory(engine)), settings.default_timezone
    )
    found: list[Any] = []
    after: int | None = None
    while True:
        page = await view.list_clients(ClientFilter(segment=segment), after_id=after, limit=PAGE)
        found.extend(page)
        if len(page) < PAGE:
            return found
        after = page[-1].id


async def _export(settings: Any, out: Path, segment: str | None, show: bool) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from app.commands.links import bot_username
    from bot.lease import link_key
    from bot.tokens import deep_link, make_link_token
    from povtor.db import create_engine, session_factory, utcnow

    engine = create_engine(settings.db_url)
    try:
        clients = await _clients(settings, engine, segment)
        key = await link_key(settings, session_factory(engine))
    finally:
        await engine.dispose()
    username = await bot_username(settings)
    now = utcnow()
    qr_dir = out / QR_DIR
    qr_dir.mkdir(parents=True, exist_ok=True)
    rows: list[ClientLink] = []
    progress = Progress(
        TextColumn("QR-коды"), BarColumn(), MofNCompleteColumn(),
        console=Console(stderr=True), disable=not show, transient=True,
    )  # fmt: skip
    with progress:
        task = progress.add_task("qr", total=len(clients))
        for number, client in enumerate(clients, start=1):
            link = deep_link(username, make_link_token(key, client.id, now=now))
            name = qr_name(number, client.external_id)
            await asyncio.to_thread(write_qr, qr_dir / name, link)  # PNG encoding is CPU work
            rows.append(
                ClientLink(
                    client.external_id, client.name, link, f"{QR_DIR}/{name}",
                    client.telegram_linked,
                )
            )  # fmt: skip
            progress.advance(task)
    expires = (now + timedelta(days=settings.telegram.link_ttl_days)).date()
    write_csv(out / CSV_NAME, rows, expires)
    return {
        "clients": len(rows),
        "csv": str(out / CSV_NAME),
        "qr_dir": str(qr_dir),
        "expires": expires.isoformat(),
    }


def links(
    out: Path = typer.Option(..., "--out", help="Folder for links.csv and qr/ (made if missing)."),
    segment: str | None = typer.Option(
        None, "--segment", help="Only clients of this segment: " + ", ".join(SEGMENTS) + "."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary (a contract)."),
) -> None:
    """Every client's personal Telegram link in a CSV and a QR code per client (for receipts
    and mailings); the links expire after POVTOR_TELEGRAM_LINK_TTL_DAYS."""
    from povtor.errors import PovtorError
    from povtor.settings import Settings

    if segment is not None and segment not in SEGMENTS:
        typer.echo(
            f"Ошибка: неизвестный сегмент {segment!r}; можно: {', '.join(SEGMENTS)}", err=True
        )
        raise typer.Exit(2)
    if out.exists() and not out.is_dir():
        typer.echo(f"Ошибка: {out} — не папка", err=True)
        raise typer.Exit(2)
    settings = Settings()
    try:
        summary = asyncio.run(_export(settings, out, segment, show=not as_json))
    except PovtorError as err:
        typer.echo(f"Ошибка: {err}", err=True)
        raise typer.Exit(1) from err
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        typer.echo(
            f"Ссылки {summary['clients']} клиентов: {summary['csv']}, QR-коды в "
            f"{summary['qr_dir']} (действуют до {summary['expires']})."
        )
