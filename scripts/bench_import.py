"""Import benchmark: N clients and their orders (~11.5 per client) from CSV, SQLite and PostgreSQL.

    .venv/bin/python scripts/bench_import.py [--clients 100000] [--backends sqlite,postgres]
                                             [--rounds 3] [--before DIR] [--db-prefix P]

The files are the demo business written as a 1C export (``;``, UTF-8 BOM, dd.mm.yyyy hh:mm,
"1 234,50", "8 (979) ..."), so parsing is exercised. Each import is a real `povtor import`
process; peak RSS is sampled from outside.

Per backend, ``--rounds`` rounds alternate the anchor with the orders import into a fresh
database holding the clients (imported first, outside the figure). The anchor loads the same
order rows, read from the same file with the csv module, as tuples of text into an unindexed
table: PostgreSQL ``COPY`` (asyncpg ``copy_records_to_table``), SQLite ``executemany`` in one
transaction. Printed first: the median ratio import / anchor per backend and the machine's load;
then the table of the median round (clients, orders) and of one re-import of the same orders.

``--before DIR`` (a source tree of earlier code, e.g. ``git archive COMMIT | tar -x -C DIR``)
imports the same orders with that code too, in the same rounds (the anchor first or last, this
code and that code swapping places every round): its ratio to the anchor and this code's time
over its time per round are printed after this code's ratios. Ratios at different loads do not
compare; these do. The CPU seconds of every round's orders import follow the table.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (
    Comparison,
    LoadWatch,
    Measured,
    Pair,
    alternate_many,
    drop_database,
    fresh_database,
    report_first,
    run_measured,
)

from crm_sync.demo.generate import DemoSpec
from crm_sync.demo.load import write_demo_csv


def read_rows(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=";")
        header = next(reader)
        return header, [tuple(row) for row in reader]


def anchor_sqlite(path: Path, folder: Path) -> float:
    """The same rows as tuples into an unindexed SQLite table, one executemany."""
    db = folder / "anchor.db"
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    header, rows = read_rows(path)
    conn = sqlite3.connect(db)
    try:
        columns = ", ".join(f"c{i} TEXT" for i in range(len(header)))
        conn.execute(f"CREATE TABLE anchor_orders ({columns})")
        marks = ", ".join("?" * len(header))
        with conn:
            conn.executemany(f"INSERT INTO anchor_orders VALUES ({marks})", rows)
    finally:
        conn.close()
    elapsed = time.perf_counter() - start
    db.unlink()
    return elapsed


async def anchor_postgres(path: Path, url: str) -> float:
    """The same rows as tuples COPYed into an unindexed PostgreSQL table."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("DROP TABLE IF EXISTS anchor_orders")
        start = time.perf_counter()
        header, rows = read_rows(path)
        columns = ", ".join(f"c{i} text" for i in range(len(header)))
        await conn.execute(f"CREATE TABLE anchor_orders ({columns})")
        await conn.copy_records_to_table("anchor_orders", records=rows)
        elapsed = time.perf_counter() - start
        await conn.execute("DROP TABLE anchor_orders")
    finally:
        await conn.close()
    return elapsed


DB_PREFIX = ["bench_import"]  # --db-prefix


def _name() -> str:
    return f"{DB_PREFIX[0]}_{uuid.uuid4().hex[:8]}"  # the benchmark's own, dropped after


def row_line(backend: str, kind: str, m: Measured) -> str:
    rows = sum(m.output[k] for k in ("created", "updated", "unchanged", "rejected"))
    label = kind if m.output["unchanged"] == 0 else f"{kind}(re)"
    return (
        f"{backend:9} {label:8} {rows:9d} {m.seconds:8.1f} "
        f"{rows / m.seconds:8.0f} {m.peak_rss_mb:8.0f} {m.cpu_seconds:6.1f} "
        f"{m.server_cpu_seconds or 0:8.1f}   {m.output}"
    )


def compare(
    backend: str, folder: Path, rounds: int, load: LoadWatch, before: Path | None = None
) -> tuple[list[Comparison], list[str]]:
    """Anchor and orders import alternately; the ratios and the table rows of the median round."""
    orders_csv = folder / "orders.csv"
    measured: list[tuple[Measured, Measured]] = []  # (clients, orders) per round
    cpu: dict[str, list[Measured]] = {"this code": [], "before": []}  # orders, per round
    reimport: list[Measured] = []
    anchor_url = fresh_database(backend, folder, _name()) if backend == "postgres" else ""

    def subject(source: Path | None = None) -> float:
        url = fresh_database(backend, folder, _name())
        try:
            clients = run_measured(url, "import", "clients", str(folder / "clients.csv"))
            orders = run_measured(url, "import", "orders", str(orders_csv), source=source)
            cpu["before" if source is not None else "this code"].append(orders)
            if source is None:
                measured.append((clients, orders))
                if not reimport:  # the re-import of the same file, once (not compared)
                    reimport.append(run_measured(url, "import", "orders", str(orders_csv)))
        finally:
            drop_database(url)
        return orders.seconds

    def anchor() -> float:
        if backend == "sqlite":
            return anchor_sqlite(orders_csv, folder)
        return asyncio.run(anchor_postgres(orders_csv, anchor_url))

    subjects: dict[str, Callable[[], float]] = {"subject": subject}
    if before is not None:
        subjects["before"] = lambda: subject(before)
    try:
        pairs = alternate_many(anchor, subjects, rounds, load)
    finally:
        if anchor_url:
            drop_database(anchor_url)
    floor = "COPY" if backend == "postgres" else "executemany"
    comparisons = [
        Comparison(
            f"{backend} orders import", f"{floor} of the same rows", pairs["subject"], goal="<= 3x"
        )
    ]
    if before is not None:
        comparisons.append(
            Comparison(f"{backend} orders import, code before", f"{floor}", pairs["before"])
        )
        comparisons.append(
            Comparison(
                f"{backend} orders import",
                "the code before",
                tuple(
                    Pair(b.subject_s, a.subject_s)
                    for a, b in zip(pairs["subject"], pairs["before"], strict=True)
                ),
            )
        )
    middle = statistics.median_low(m.seconds for _, m in measured)
    clients, orders = next(pair for pair in measured if pair[1].seconds == middle)
    rows = [row_line(backend, "clients", clients), row_line(backend, "orders", orders)]
    rows += [cpu_line(backend, side, runs) for side, runs in cpu.items() if runs]
    return comparisons, rows + [row_line(backend, "orders", m) for m in reimport]


def cpu_line(backend: str, side: str, runs: list[Measured]) -> str:
    """CPU seconds of each round's orders import: povtor (its parsing process included) and,
    on PostgreSQL, the whole server (other clients' work too: an upper bound)."""
    own = ", ".join(f"{m.cpu_seconds:.1f}" for m in runs)
    line = f"{backend:9} orders cpu s per round, {side}: povtor [{own}]"
    if backend == "postgres":
        line += f", server [{', '.join(f'{m.server_cpu_seconds or 0:.1f}' for m in runs)}]"
    return line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="anchor/import rounds")
    parser.add_argument(
        "--before", type=Path, default=None, help="source tree of earlier code, run alternately"
    )
    parser.add_argument(
        "--db-prefix", default=DB_PREFIX[0], help="name prefix of the benchmark's databases"
    )
    args = parser.parse_args()
    DB_PREFIX[0] = args.db_prefix
    load = LoadWatch()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="povtor-bench-import-"))
    folder.mkdir(parents=True, exist_ok=True)
    counts = write_demo_csv(DemoSpec(args.clients, seed=1, until=date(2026, 1, 1)), folder)
    sizes = {n: (folder / f"{n}.csv").stat().st_size / 2**20 for n in ("clients", "orders")}
    lines = [
        f"files: {counts['clients']} clients ({sizes['clients']:.0f} MB), "
        f"{counts['orders']} orders ({sizes['orders']:.0f} MB)",
        f"{'backend':9} {'file':8} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'peak MB':>8} "
        f"{'cpu s':>6} {'pg cpu s':>8}",
    ]
    comparisons, beside = [], []
    for backend in args.backends.split(","):
        found, rows = compare(backend, folder, args.rounds, load, args.before)
        comparisons.append(found[0])
        beside += found[1:]  # the code before: after every backend's own ratio
        lines += rows
    report_first(comparisons + beside, load, lines)


if __name__ == "__main__":
    main()
