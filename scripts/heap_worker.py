"""The worker under heap tracing, for the soak run: ``python scripts/heap_worker.py FOLDER run``.

Runs the normal command line (``app.cli``) with the remaining arguments. Each SIGUSR1 writes
to FOLDER ``heap-NN.json`` (NN counting from 1: the number of asyncio tasks, pymalloc's blocks
in use, the objects by type, and under tracing the traced bytes and tracemalloc's own memory)
and, under tracing, ``heap-NN.snap`` (``tracemalloc.take_snapshot()``). The JSON is written
last: its presence says the snapshot is complete. With ``SOAK_HEAP_REFERRERS=Type,Type`` it
also writes ``heap-NN-referrers.txt``: what holds three objects of each named type, six levels
up (how a growing type is kept alive). Nothing here is part of the product: the worker itself
carries no diagnostics.

The Nth signal (``SOAK_HEAP_TRACE_FROM``, 1 by default) starts ``tracemalloc``
(``SOAK_HEAP_FRAMES`` frames a trace, 25 by default), so the snapshots hold what was allocated
since and is still alive: the growth. ``SOAK_HEAP_FROM_START=1`` traces from the launch instead,
but the start (imports, the speech models, the morphology dictionary) then took over four
minutes on a loaded machine. Tracing costs: every allocation is recorded with its stack, which
slows the worker and adds its own memory (``tracemalloc_kb``) to the RSS the soak prints.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TextIO

FRAMES = int(os.environ.get("SOAK_HEAP_FRAMES", "25"))
MAX_DEPTH = 6
TRACE_FROM = int(os.environ.get("SOAK_HEAP_TRACE_FROM", "1"))  # the signal that starts tracing


def _running_tasks() -> int | None:
    """asyncio tasks of the loop running in this (main) thread, None outside one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return len(asyncio.all_tasks(loop))


STARTED = time.time()


def dump(folder: Path, number: int, tasks: int | None) -> None:
    """Write snapshot ``number`` and its summary to ``folder``."""
    began = time.monotonic()
    traced = peak = own = 0
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        traced, peak = tracemalloc.get_traced_memory()
        own = tracemalloc.get_tracemalloc_memory()
        tracemalloc.stop()  # this copy only counts from here: tracing every count would crawl
        snapshot.dump(str(folder / f"heap-{number:02d}.snap"))
    objects = gc.get_objects()
    types = Counter(type(o).__qualname__ for o in objects)
    wanted = [name for name in os.environ.get("SOAK_HEAP_REFERRERS", "").split(",") if name]
    if wanted:
        with (folder / f"heap-{number:02d}-referrers.txt").open("w", encoding="utf-8") as out:
            for name in wanted:
                found = [o for o in objects if type(o).__qualname__ == name]
                skip = {id(objects), id(found)}
                for i in range(min(3, len(found))):
                    print(f"{name} at {id(found[i]):#x}, held by:", file=out)
                    referrer_tree(found[i], out, skip)
    del objects
    summary = {
        "number": number,
        "uptime_s": round(time.time() - STARTED, 1),
        "traced_kb": traced // 1024,
        "peak_kb": peak // 1024,
        "tracemalloc_kb": own // 1024,
        "asyncio_tasks": tasks,
        "gc_objects": sum(types.values()),
        "allocated_blocks": sys.getallocatedblocks(),
        "types": dict(types.most_common()),
        "took_s": round(time.monotonic() - began, 2),
    }
    partial = folder / f"heap-{number:02d}.json.part"
    partial.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    partial.rename(folder / f"heap-{number:02d}.json")


def describe(obj: object) -> str:
    """A referrer's type, with a hint of which one it is (a dict's first keys, a function's
    or frame's name)."""
    name = type(obj).__qualname__
    if isinstance(obj, dict):
        return f"dict {list(obj)[:4]!r:.120}"
    if isinstance(obj, FrameType):
        return f"frame {obj.f_code.co_qualname} ({obj.f_code.co_filename}:{obj.f_lineno})"
    code = getattr(obj, "__code__", None)
    if code is not None:
        return f"{name} {code.co_qualname}"
    return name


def referrer_tree(obj: object, out: TextIO, skip: set[int], depth: int = 0) -> None:
    """What refers to ``obj``, to ``MAX_DEPTH`` levels, three referrers a level. ``skip``
    holds the ids of this search's own lists (and of the objects already shown)."""
    if depth >= MAX_DEPTH:
        return
    skip.add(id(obj))
    referrers = gc.get_referrers(obj)
    skip.add(id(referrers))
    holders = [r for r in referrers if id(r) not in skip and not isinstance(r, Iterator)]
    skip.add(id(holders))
    del referrers
    for i in range(min(3, len(holders))):
        print(f"{'  ' * (depth + 1)}{describe(holders[i])}", file=out)
        referrer_tree(holders[i], out, skip, depth + 1)


def main() -> None:
    folder = Path(sys.argv[1]).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    count = 0

    def on_usr1(_signum: int, _frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        began = time.monotonic()
        if count >= TRACE_FROM and not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
        gc.collect()
        snapshot_in_grandchild(folder, count, _running_tasks())
        print(f"heap snapshot {count} forked in {time.monotonic() - began:.2f} s", file=sys.stderr)

    if os.environ.get("SOAK_HEAP_FROM_START") == "1":
        tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, on_usr1)
    print(f"heap tracing ({FRAMES} frames), snapshots on SIGUSR1 to {folder}", file=sys.stderr)
    sys.argv = ["povtor", *sys.argv[2:]]
    from app.cli import app

    app(prog_name="povtor")


def snapshot_in_grandchild(folder: Path, number: int, tasks: int | None) -> None:
    """Take and write the snapshot in a forked copy of this process: the worker goes on at
    once, and the snapshot's own memory (it copies every trace) is not added to its RSS. The
    copy forks again and exits, so the worker reaps it at once and leaves no zombie."""
    child = os.fork()
    if child == 0:
        try:
            if os.fork() == 0:
                code = 1
                try:
                    dump(folder, number, tasks)
                    code = 0
                finally:
                    os._exit(code)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


if __name__ == "__main__":
    main()
