"""Import benchmark: N clients and their orders (~11.5 per client) from CSV, SQLite and PostgreSQL.

    .venv/bin/python scripts/bench_import.py [--clients 100000] [--backends sqlite,postgres]

The files are the demo business written as a 1C export (``;``, UTF-8 BOM, dd.mm.yyyy hh:mm,
"1 234,50", "8 (979) ..."), so parsing is exercised. Each import is a real `povtor import`
process; peak RSS is sampled from outside. Targets: < 60 s and < 300 MB per file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import drop_database, fresh_database, run_measured

from crm_sync.demo.generate import DemoSpec
from crm_sync.demo.load import write_demo_csv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="povtor-bench-import-"))
    folder.mkdir(parents=True, exist_ok=True)
    counts = write_demo_csv(DemoSpec(args.clients, seed=1, until=date(2026, 1, 1)), folder)
    sizes = {n: (folder / f"{n}.csv").stat().st_size / 2**20 for n in ("clients", "orders")}
    print(
        f"files: {counts['clients']} clients ({sizes['clients']:.0f} MB), "
        f"{counts['orders']} orders ({sizes['orders']:.0f} MB)"
    )
    print(
        f"{'backend':9} {'file':8} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'peak MB':>8} "
        f"{'cpu s':>6} {'pg cpu s':>8}"
    )
    for backend in args.backends.split(","):
        url = fresh_database(backend, folder)
        try:
            for kind in ("clients", "orders", "orders"):
                m = run_measured(url, "import", kind, str(folder / f"{kind}.csv"))
                rows = sum(m.output[k] for k in ("created", "updated", "unchanged", "rejected"))
                label = kind if m.output["unchanged"] == 0 else f"{kind}(re)"
                print(
                    f"{backend:9} {label:8} {rows:9d} {m.seconds:8.1f} "
                    f"{rows / m.seconds:8.0f} {m.peak_rss_mb:8.0f} {m.cpu_seconds:6.1f} "
                    f"{m.server_cpu_seconds or 0:8.1f}   {m.output}"
                )
        finally:
            drop_database(url)


if __name__ == "__main__":
    main()
