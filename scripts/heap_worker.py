"""The worker under heap tracing, for the soak run: ``python scripts/heap_worker.py FOLDER run``.

Runs the normal command line (``app.cli``) with the remaining arguments. The first SIGUSR1
starts ``tracemalloc`` (25 frames a trace); each SIGUSR1 writes ``heap-NN.snap``
(``tracemalloc.take_snapshot()``, NN counting from 1) and ``heap-NN.json`` (traced bytes,
tracemalloc's own memory, the number of asyncio tasks, of allocated blocks, and of objects
by type) to
FOLDER; the JSON is written last, so its presence says the pair is complete. Nothing here is
part of the product: the worker itself carries no diagnostics.

Tracing starts at the first signal (``SOAK_HEAP_TRACE_FROM=N``: at the Nth; the snapshots
before it count objects only, and write no ``.snap``), not at launch (``SOAK_HEAP_FROM_START=1``
for that):
under tracing the start (imports, the speech models, the morphology dictionary) took over four
minutes on a loaded machine. So the snapshots hold what was allocated since the first one and
is still alive: the growth. Tracing costs: every allocation is recorded with its stack, which
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
from pathlib import Path
from types import FrameType

FRAMES = int(os.environ.get("SOAK_HEAP_FRAMES", "25"))
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
    types = Counter(type(o).__qualname__ for o in gc.get_objects())
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
