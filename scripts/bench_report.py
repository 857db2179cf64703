"""Report benchmark: `povtor report` over the demo business on PostgreSQL (or SQLite).

    .venv/bin/python scripts/bench_report.py [--clients 1000000] [--backend postgres] [--keep]

Loads N demo clients (~11.5 orders each) into a fresh database, then times the real
`povtor report --json` process three times. Target: < 10 s for 1M clients / 10M orders on
PostgreSQL. ``--database NAME`` reuses a database kept by an earlier ``--keep`` run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import PG_ADMIN_URL, drop_database, fresh_database, run_measured

from crm_sync.demo.generate import DemoSpec
from crm_sync.demo.load import load_demo
from povtor.db import create_engine


async def _load(url: str, clients: int) -> dict[str, int]:
    engine = create_engine(url)
    try:
        return await load_demo(engine, DemoSpec(clients, seed=1, until=date(2026, 1, 1)))
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--backend", default="postgres")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--database", default=None, help="Reuse this kept PostgreSQL database.")
    args = parser.parse_args()
    if args.database:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{args.database}"
    else:
        url = fresh_database(args.backend, Path("/tmp"))
        started = time.perf_counter()
        counts = asyncio.run(_load(url, args.clients))
        print(f"loaded {counts} in {time.perf_counter() - started:.0f} s into {url}")
    try:
        for _ in range(3):
            m = run_measured(url, "report", "--from", "2025-01-01", "--to", "2025-12-31")
            print(
                f"povtor report: {m.seconds:.2f} s ({m.cpu()}), peak {m.peak_rss_mb:.0f} MB, "
                f"orders in period {m.output['orders']}, clients {m.output['clients_to_date']}"
            )
    finally:
        if not (args.keep or args.database):
            drop_database(url)


if __name__ == "__main__":
    main()
