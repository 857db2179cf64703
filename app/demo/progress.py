"""What the demo shows while it runs: counts read from the store (what the worker really did)
and the latest timeline entries, redrawn every second with rich."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# (label, SQL) over rows made after the demo started (ids above the baseline, see Baseline)
COUNTS: tuple[tuple[str, str], ...] = (
    ("запланировано контактов", "SELECT count(*) FROM outreach_attempts"),
    ("сообщений отправлено", "SELECT count(*) FROM events WHERE kind = 'message_out' AND id > :e"),
    ("ответов клиентов", "SELECT count(*) FROM outreach_outcomes WHERE kind = 'answered'"),
    ("звонков идёт", "SELECT count(*) FROM calls WHERE state = 'active'"),
    ("звонков всего", "SELECT count(*) FROM calls"),
    ("записей разговоров", "SELECT count(*) FROM recordings"),
    ("оценок NPS", "SELECT count(*) FROM nps_responses WHERE id > :n"),
    ("задач менеджерам", "SELECT count(*) FROM tasks WHERE id > :t"),
    ("оповещений менеджеру", "SELECT count(*) FROM bot_alerts"),
)
FEED_SQL = (
    "SELECT e.id, e.kind, e.summary, c.name FROM events e JOIN clients c ON c.id = e.client_id "
    "WHERE e.id > :e AND e.kind <> 'consent' ORDER BY e.id DESC LIMIT 8"
)


@dataclass(frozen=True, slots=True)
class Baseline:
    """Highest ids before the run: the demo's history is not counted as its activity."""

    events: int
    nps: int
    tasks: int

    @classmethod
    async def read(cls, engine: AsyncEngine) -> Baseline:
        async with engine.connect() as conn:
            values = [
                int(await conn.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}")) or 0)
                for table in ("events", "nps_responses", "tasks")
            ]
        return cls(*values)


@dataclass(frozen=True, slots=True)
class Snapshot:
    counts: tuple[tuple[str, int], ...]
    feed: tuple[str, ...]

    def value(self, label: str) -> int:
        return dict(self.counts)[label]


async def snapshot(engine: AsyncEngine, base: Baseline) -> Snapshot:
    params = {"e": base.events, "n": base.nps, "t": base.tasks}
    async with engine.connect() as conn:
        counts = []
        for label, sql in COUNTS:
            bound = {k: v for k, v in params.items() if f":{k}" in sql}
            counts.append((label, int(await conn.scalar(text(sql), bound) or 0)))
        rows = (await conn.execute(text(FEED_SQL), {"e": base.events})).all()
    feed = tuple(f"{name}: {summary}" for _, _, summary, name in reversed(rows))
    return Snapshot(tuple(counts), feed)


def render(
    snap: Snapshot,
    people: Sequence[str],
    elapsed_s: float,
    limit_s: float | None,
    shown: str = "",
) -> Group:
    table = Table(show_header=False, box=None, padding=(0, 2))
    for label, value in snap.counts:
        table.add_row(label, Text(str(value), style="bold"))
    clock = f"{elapsed_s:.0f} с" + (f" из {limit_s:.0f}" if limit_s else " (Ctrl-C — стоп)")
    if shown:
        clock += f"; часы демо: {shown}"
    parts: list[Table | Text] = [Text(f"Демо идёт: {clock}", style="bold green"), table]
    if snap.feed:
        parts.append(Text("\nВ истории клиентов:", style="bold"))
        parts.extend(Text(f"  {line}"[:110]) for line in snap.feed)
    if people:
        parts.append(Text("\nКлиенты в Telegram (симуляция):", style="bold"))
        parts.extend(Text(f"  {line}"[:110]) for line in people)
    return Group(*parts)
