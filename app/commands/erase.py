"""``povtor client erase``: a person's request to erase their personal data (152-FZ), and
``povtor client erasures``: the record of the requests.

Each client named (by phone or by code) is erased everywhere through :mod:`app.erasure`; one
JSON line per client with ``--json``, never a phone. A request that fails part-way stays pending
and the next run of the command (with or without clients) finishes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from povtor.errors import InvalidInput, PovtorError

PHONE, CODE = "phone", "code"
JSON_HELP = "One JSON object per client on stdout: id, request, state, removed, error."


@dataclass(frozen=True, slots=True)
class Target:
    """A client as the operator named it: ``line`` is its place in the input (1-based), so a
    client not found can be reported without echoing the phone."""

    line: int
    kind: str  # PHONE (E.164) or CODE (the client's code in 1C / the CRM)
    value: str


def parse_targets(
    phones: Sequence[str], codes: Sequence[str], lines: Sequence[str], region: str
) -> list[Target]:
    """Phones and codes in input order: the options first, then the file's lines. A file line
    ``phone:...`` or ``code:...`` says what it is; otherwise a valid phone number is a phone
    and anything else a code. Raises InvalidInput naming the first bad phone's position."""
    from povtor.suppression import normalise_phone

    raw = [(PHONE, p) for p in phones] + [(CODE, c) for c in codes]
    for text in lines:
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        prefix, _, rest = text.partition(":")
        if prefix in (PHONE, CODE) and rest.strip():
            raw.append((prefix, rest.strip()))
        elif sum(ch.isdigit() for ch in text) >= 10 and normalise_phone(text, region):
            raw.append((PHONE, text))
        else:
            raw.append((CODE, text))
    targets = []
    for number, (kind, value) in enumerate(raw, start=1):
        if kind == PHONE:
            e164 = normalise_phone(value, region)
            if e164 is None:
                raise InvalidInput(f"entry {number}: not a valid phone number")
            value = e164
        targets.append(Target(number, kind, value))
    return targets


def result_line(
    target: Target | None, client_id: int | None, request: Any | None
) -> dict[str, Any]:
    """The ``--json`` contract of one client: ``state`` is done, pending (a part failed:
    ``error`` says which; run the command again) or not_found (nothing kept about it; its phone
    or code is suppressed all the same)."""
    return {
        "entry": target.line if target is not None else None,
        "id": client_id,
        "request": request.id if request is not None else None,
        "state": request.state if request is not None else "not_found",
        "removed": {part: dict(counts) for part, counts in request.removed.items()}
        if request is not None
        else {},
        "error": request.error if request is not None and request.state != "done" else None,
    }


def _who() -> str:
    return f"cli:{socket.gethostname()}:{os.getpid()}"


async def _erase(
    sessions: Any,
    settings: Any,
    targets: list[Target],
    confirm: Callable[[int, int], bool],
    emit: Callable[[dict[str, Any]], None],
    progress: Callable[[int, int | None], None] | None,
) -> int:
    """Resume pending requests, then erase the targets; how many ended not done."""
    from app.erasure import build_erasure
    from crm_sync.history.store import SqlHistoryStore
    from povtor.suppression import EXTERNAL_ID, digest
    from povtor.suppression import PHONE as PHONE_KIND

    erasure = build_erasure(settings, sessions)
    store = SqlHistoryStore(sessions)
    left = 0
    for request in await erasure.ledger.pending():  # an earlier run stopped part-way
        request = await erasure.finish(request)
        left += request.state != "done"
        emit(result_line(None, request.client_id, request))
    found: list[tuple[Target, Any]] = []
    missing: list[Target] = []
    seen: set[int] = set()
    for target in targets:
        clients = await _clients_of(store, target)
        if not clients:
            missing.append(target)
        for client in clients:
            if client.id not in seen:
                seen.add(client.id)
                found.append((target, client))
    if not targets or not confirm(len(found), len(missing)):
        return left
    key = await erasure.ledger.suppression_key()
    await erasure.ledger.suppress(
        [digest(key, PHONE_KIND if t.kind == PHONE else EXTERNAL_ID, t.value) for t in missing]
    )
    for target in missing:
        emit(result_line(target, None, None))
    for done, (target, client) in enumerate(found, start=1):
        request = await erasure.finish(await erasure.request(client, by=_who()))
        left += request.state != "done"
        emit(result_line(target, client.id, request))
        if progress is not None:
            progress(done, len(found))
    return left


async def _clients_of(store: Any, target: Target) -> list[Any]:
    if target.kind == CODE:
        client = await store.find_client(target.value)
        return [client] if client is not None else []
    digits = target.value.lstrip("+")
    found, after = [], None
    while True:  # every client with this number, not only the oldest
        page = await store.search_clients(digits, after_id=after, limit=200)
        found += [c for c in page if target.value in c.phones]
        if len(page) < 200:
            return found
        after = page[-1].id


def erase_command(
    phone: list[str] = typer.Option([], "--phone", help="A phone number (repeatable)."),
    client_id: list[str] = typer.Option(
        [], "--client-id", help="The client's code in 1C / the CRM, as in `client show`."
    ),
    file: Path | None = typer.Option(
        None, "--file", help="One phone or code per line ('phone:' / 'code:' to say which)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Erase clients everywhere on their request (152-FZ): history, contacts, chats, calls and
    recordings; they are not imported or contacted again. Without clients: finish requests an
    earlier run left pending."""
    from app.commands.crm import _with_sessions
    from app.commands.history import _progress
    from povtor.logs import setup_logging
    from povtor.settings import Settings

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines() if file else []
        targets = parse_targets(phone, client_id, lines, settings.default_region)
    except (OSError, UnicodeDecodeError, InvalidInput) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None

    def confirm(found: int, missing: int) -> bool:
        typer.echo(f"найдено клиентов: {found}, не найдено: {missing}", err=True)
        if yes or (found == 0 and missing == 0):
            return True
        if not sys.stdin.isatty():
            typer.echo("error: нужно подтверждение: запустите с --yes", err=True)
            raise typer.Exit(2)
        return typer.confirm(
            "Удалить их персональные данные везде без возможности восстановления?", err=True
        )

    def emit(line: dict[str, Any]) -> None:
        if as_json:
            typer.echo(json.dumps(line, ensure_ascii=False))
        else:
            counts = sum(n for part in line["removed"].values() for n in part.values())
            what = f"client #{line['id']}" if line["id"] is not None else f"entry {line['entry']}"
            tail = f": {line['error']}" if line["error"] else ""
            typer.echo(f"{what}: {line['state']}, {counts} records removed{tail}")

    try:
        with _progress("erasing") if file is not None else nullcontext() as progress:
            left = asyncio.run(
                _with_sessions(
                    settings,
                    lambda sessions: _erase(sessions, settings, targets, confirm, emit, progress),
                )
            )
    except PovtorError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    if left:
        typer.echo(f"{left} request(s) left pending: run the command again", err=True)
        raise typer.Exit(1)


def erasures_command(
    limit: int = typer.Option(100, "--limit", min=1, help="How many requests, newest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per request."),
) -> None:
    """The record of erasure requests (when, by whom, what each part removed), without
    personal data: what to show an authority (Roskomnadzor) that asks."""
    from app.commands.crm import _run as run_with_settings
    from app.commands.crm import _with_sessions
    from crm_sync.history.erasure_ledger import SqlErasureLedger

    async def work(settings: Any) -> Any:
        return await _with_sessions(
            settings, lambda sessions: SqlErasureLedger(sessions).requests(limit=limit)
        )

    for request in run_with_settings(work):
        line = {
            "request": request.id,
            "id": request.client_id,
            "requested_at": request.requested_at.isoformat(),
            "requested_by": request.requested_by,
            "state": request.state,
            "finished_at": request.finished_at.isoformat() if request.finished_at else None,
            "parts": sorted(request.removed),
            "removed": {part: dict(counts) for part, counts in request.removed.items()},
            "error": request.error,
        }
        if as_json:
            typer.echo(json.dumps(line, ensure_ascii=False))
        else:
            typer.echo(
                f"#{request.id} client #{request.client_id} {request.state}: requested "
                f"{line['requested_at']} by {request.requested_by}, finished "
                f"{line['finished_at'] or '-'}, parts: {', '.join(line['parts']) or '-'}"
            )
