"""The demo's worker: `povtor run`, imported while the demo still prepares its store.

A worker's start is mostly Python importing what it runs (aiogram, the dashboard, the call
engine): seconds, tens of seconds on a busy machine. The demo starts this process first; it
imports all that, then waits for one line on stdin, which the demo writes once the store is
ready (an empty stdin: the demo went away, nothing to run). Then it is exactly `povtor run`.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

# what `povtor run` imports on its way up (app.wiring imports most of it inside functions)
PRELOAD = (
    "app.cli",
    "app.runtime",
    "app.wiring",
    "app.worker",
    "bot.service",
    "dashboard.service",
    "crm_sync.history.retention_view",
    "voice.call_channel",
    "voice.engine",
    "voice.asr_worker",
)


def _end_the_group(_sig: int, _frame: object) -> None:
    """The demo died: this worker and every process it started (its transcription pool
    shares its process group) end at once; nobody is left to serve or to drain for."""
    os.killpg(0, signal.SIGKILL)


def main() -> None:
    # the demo sets SIGUSR1 as this process's parent-death signal (app.demo.children)
    signal.signal(signal.SIGUSR1, _end_the_group)
    for name in PRELOAD:
        importlib.import_module(name)
    print("imported", flush=True)  # to the demo, which waits for it before the go
    os.dup2(2, 1)  # from here on, what the worker prints goes to its log
    line = sys.stdin.readline().split()
    if not line or line[0] != "go":
        raise SystemExit(0)  # the demo went away before the store was ready
    if len(line) > 1:  # the moment the demo's clock started (the first worker's go)
        os.environ["POVTOR_DEMO_CLOCK_ORIGIN"] = line[1]
    from app.cli import app

    app(args=["run"], prog_name="povtor")


if __name__ == "__main__":
    main()
