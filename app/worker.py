"""`povtor run`: the worker's entry point. Checks the settings, then runs the core
(:func:`app.runtime.run`) with the adapters (:func:`app.wiring.build_adapters`) on uvloop until
SIGTERM/SIGINT or the given duration.
"""

from __future__ import annotations

import asyncio
import contextlib

from app import event_loop
from app.checks import check_settings
from app.parts import Runtime
from app.runtime import run, settle_heap
from app.wiring import build_adapters
from povtor.lifecycle import wait_or_stop
from povtor.settings import Settings


def main(settings: Settings, *, duration_s: float | None = None) -> None:
    """`povtor run`: every configured part; with ``duration_s``, stop (draining) after that."""
    check_settings(settings)  # before the event loop, signal handlers or any file is touched

    async def _main() -> None:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            if duration_s is not None:
                timer = tg.create_task(_stop_after(stop, duration_s), name="duration")
            await run(settings, stop=stop, adapters=build_adapters, on_ready=_freeze_start_up)
            if duration_s is not None:
                timer.cancel()

    with contextlib.suppress(KeyboardInterrupt):
        event_loop.run(_main())  # uvloop: a sixth of asyncio's cost per RTP packet received


def _freeze_start_up(rt: Runtime) -> None:
    settle_heap()


async def _stop_after(stop: asyncio.Event, seconds: float) -> None:
    await wait_or_stop(stop, seconds)
    stop.set()
