"""What grew in the worker's heap between snapshots taken by scripts/heap_worker.py.

    .venv/bin/python scripts/heap_report.py FOLDER/heap             # base: first after 2 min
    .venv/bin/python scripts/heap_report.py FOLDER/heap --base-min 30

Prints each snapshot (minute, traced memory, tracemalloc's own, asyncio tasks, objects), the
growth of each interval with its three largest lines, then the 15 lines (file:line) that grew
most from the base snapshot (the first at or after ``--base-min``) to the last, the largest of
them with their stack, and the object types whose count changed most.
"""

from __future__ import annotations

import argparse
import json
import re
import tracemalloc
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

TOP = 15
IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


@dataclass
class Taken:
    number: int
    minute: float
    summary: dict[str, Any]
    path: Path

    def load(self) -> tracemalloc.Snapshot:
        return tracemalloc.Snapshot.load(str(self.path)).filter_traces(IGNORED)


def taken(heap_dir: Path) -> list[Taken]:
    """The complete snapshots in ``heap_dir``, in order."""
    found = []
    for summary_path in sorted(heap_dir.glob("heap-*.json")):
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        snap = summary_path.with_suffix(".snap")
        found.append(Taken(int(summary["number"]), summary["uptime_s"] / 60, summary, snap))
    return sorted(found, key=lambda t: t.number)


ROOT = Path(__file__).resolve().parents[1]
LIBRARY = re.compile(r".*/(?:site-packages|lib/python3\.\d+)/")


def short(filename: str) -> str:
    """A file name from its package down (sqlalchemy/…, asyncio/…) or from the repository."""
    if LIBRARY.match(filename):
        return LIBRARY.sub("", filename)
    path = Path(filename)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else filename


def line_of(stat: tracemalloc.StatisticDiff) -> str:
    frame = stat.traceback[0]
    return f"{short(frame.filename)}:{frame.lineno}"


def growth_lines(
    old: tracemalloc.Snapshot, new: tracemalloc.Snapshot, key: str, count: int
) -> list[tracemalloc.StatisticDiff]:
    diffs = new.compare_to(old, key)
    return sorted(diffs, key=lambda d: d.size_diff, reverse=True)[:count]


def heap_report(heap_dir: Path, base_min: float) -> None:
    counted = taken(heap_dir)
    print("heap snapshots (tracemalloc's own memory is part of the worker's RSS; blocks: pymalloc")
    print("blocks in use; a snapshot taken before tracing began counts objects only):")
    print(
        f"{'#':>3} {'min':>6} {'traced_MB':>10} {'own_MB':>7} {'tasks':>6} {'objects':>9} "
        f"{'blocks':>9}"
    )
    for t in counted:
        s = t.summary
        print(
            f"{t.number:3d} {t.minute:6.1f} {s['traced_kb'] / 1024:10.2f} "
            f"{s['tracemalloc_kb'] / 1024:7.1f} {s['asyncio_tasks']!s:>6} "
            f"{s['gc_objects']!s:>9} {s.get('allocated_blocks', '?')!s:>9}"
        )
    if len(counted) >= 2:
        type_changes(counted[0], counted[-1])
    snaps = [t for t in counted if t.path.exists()]
    if len(snaps) < 2:
        print(f"heap: {len(snaps)} traced snapshot(s) in {heap_dir}: nothing to compare")
        return
    loaded = {t.number: t.load() for t in snaps}
    print("growth per interval (traced, kB a minute) and its three largest lines:")
    for before, after in pairwise(snaps):
        old, new = loaded[before.number], loaded[after.number]
        grown = sum(s.size for s in new.statistics("filename")) - sum(
            s.size for s in old.statistics("filename")
        )
        minutes = max(after.minute - before.minute, 1e-9)
        print(
            f"  min {before.minute:5.1f} -> {after.minute:5.1f}: {grown / 1024:+9.1f} kB "
            f"({grown / 1024 / minutes:+7.1f} kB/min)"
        )
        for d in growth_lines(old, new, "lineno", 3):
            print(f"      {d.size_diff / 1024:+8.1f} kB {d.count_diff:+7d} blocks  {line_of(d)}")
    base = next((t for t in snaps if t.minute >= base_min), snaps[0])
    last = snaps[-1]
    if base is last:
        base = snaps[-2]
    old, new = loaded[base.number], loaded[last.number]
    print(
        f"top {TOP} growth lines from snapshot {base.number} (min {base.minute:.1f}) "
        f"to {last.number} (min {last.minute:.1f}):"
    )
    for d in growth_lines(old, new, "lineno", TOP):
        print(
            f"  {d.size_diff / 1024:+9.1f} kB {d.count_diff:+8d} blocks "
            f"(now {d.size / 1024:9.1f} kB)  {line_of(d)}"
        )
    print("the three largest growths by stack (most recent call first, 12 frames):")
    for d in growth_lines(old, new, "traceback", 3):
        print(f"  {d.size_diff / 1024:+9.1f} kB {d.count_diff:+8d} blocks")
        frames = list(reversed(d.traceback))[:12]
        for frame in frames:
            print(f"      {short(frame.filename)}:{frame.lineno}")


def type_changes(first: Taken, last: Taken) -> None:
    print(
        f"object counts by type (as the garbage collector sees them) that changed most from "
        f"min {first.minute:.1f} to min {last.minute:.1f}:"
    )
    before, after = first.summary["types"], last.summary["types"]
    changes = {k: after.get(k, 0) - before.get(k, 0) for k in {*before, *after}}
    for name, change in sorted(changes.items(), key=lambda kv: -abs(kv[1]))[:12]:
        print(f"  {change:+8d} {name} (now {after.get(name, 0)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--base-min", type=float, default=2.0, help="first snapshot from then")
    args = parser.parse_args()
    heap_report(args.folder, args.base_min)


if __name__ == "__main__":
    main()
