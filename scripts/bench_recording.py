"""CPU cost of recording many calls at once: N recorders fed 20 ms ticks, as the media loop does.

    .venv/bin/python scripts/bench_recording.py [--calls 400] [--seconds 10] [--fast]

Paced (default): one task ticks every recorder every 20 ms in real time and reports the event
loop's share, the writer threads' share, tick lateness and the finish (fsync + rename + sha256)
of every file. ``--fast`` feeds ticks without pacing to measure the pure cost per audio second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from voice.recording import CallRecorder, RecordingWriter

TICK = 0.02


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(calls: int, seconds: float, fast: bool, threads: int, folder: Path) -> None:
    frames = [os.urandom(320) for _ in range(50)]
    ticks = round(seconds / TICK)
    loop = asyncio.get_running_loop()
    with RecordingWriter(threads=threads) as writer:
        cpu0, main0, wall0 = _cpu(), time.thread_time(), time.perf_counter()
        recorders = [
            CallRecorder.open(folder, f"bench-{i:04d}", writer=writer) for i in range(calls)
        ]
        open_s = time.perf_counter() - wall0
        batch_s: list[float] = []
        late_ms: list[float] = []
        start = loop.time()
        for n in range(ticks):
            if not fast:
                due = start + n * TICK
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                late_ms.append((loop.time() - due) * 1000)
            t = time.perf_counter()
            robot, client = frames[n % 50], frames[(n + 7) % 50]
            for i, rec in enumerate(recorders):
                rec.write_tick(robot, client if i % 3 else None)
            batch_s.append(time.perf_counter() - t)
            if fast and n % 50 == 0:
                await asyncio.sleep(0)
        feed_wall = time.perf_counter() - wall0
        feed_cpu, feed_main = _cpu() - cpu0, time.thread_time() - main0
        t = time.perf_counter()
        infos = await asyncio.gather(*(r.finish() for r in recorders))
        finish_s = time.perf_counter() - t
        total_cpu = _cpu() - cpu0
    audio_s = calls * ticks * TICK
    size = sum(i.size_bytes for i in infos)
    print(f"recorders: {calls}, audio per call: {ticks * TICK:.1f} s, writer threads: {threads}")
    print(f"mode: {'unpaced' if fast else 'paced in real time'}; folder: {folder}")
    print(f"open {calls} recorders: {open_s * 1000:.1f} ms")
    print(
        f"feeding: wall {feed_wall:.2f} s, process CPU {feed_cpu:.2f} s"
        f" (loop thread {feed_main:.2f} s, writer threads {feed_cpu - feed_main:.2f} s)"
    )
    if not fast:
        print(f"  = {100 * feed_cpu / feed_wall:.1f}% of one core for {calls} live recordings")
    print(f"  = {1e6 * feed_cpu / (calls * ticks):.2f} us CPU per call per 20 ms tick")
    print(f"  = {1000 * feed_cpu / audio_s:.3f} ms CPU per second of recorded call")
    per_tick_us = [1e6 * b / calls for b in batch_s]
    print(
        f"loop time per tick of all {calls} recorders: p50 {1000 * statistics.median(batch_s):.2f}"
        f" ms, p99 {1000 * _pct(batch_s, 0.99):.2f} ms, max {1000 * max(batch_s):.2f} ms"
        f" ({statistics.median(per_tick_us):.2f} us per write_tick)"
    )
    if late_ms:
        print(
            f"tick lateness: p50 {statistics.median(late_ms):.2f} ms,"
            f" p99 {_pct(late_ms, 0.99):.2f} ms, max {max(late_ms):.2f} ms"
        )
    print(
        f"finish of {calls} (fsync, rename, fsync dir, sha256): {finish_s:.2f} s wall;"
        f" {size / 1e6:.1f} MB written; total CPU {total_cpu:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fast", action="store_true", help="no real-time pacing")
    parser.add_argument("--folder", type=Path, help="where to write (default: a temp folder)")
    args = parser.parse_args()
    if args.folder:
        args.folder.mkdir(parents=True, exist_ok=True)
        asyncio.run(bench(args.calls, args.seconds, args.fast, args.threads, args.folder))
        return
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        asyncio.run(bench(args.calls, args.seconds, args.fast, args.threads, Path(tmp)))


if __name__ == "__main__":
    main()
