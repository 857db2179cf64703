"""Fake channels for the outreach engine's own tests.

``ScriptedChannel`` answers from a script per client, in memory. ``JournalChannel`` appends each
contact to a shared append-only file (one line per execution key), so tests over several
worker processes can prove that no execution happened twice. Both are idempotent per execution
key, as every real channel must be.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from povtor.domain import Attempt, ChannelKind, Client, Outcome, OutcomeKind


def execution_key(attempt: Attempt) -> str:
    return f"{attempt.idempotency_key}#{attempt.attempt_no}"


class ScriptedChannel:
    def __init__(
        self,
        kind: ChannelKind,
        script: Mapping[str, Sequence[OutcomeKind | Outcome]] | None = None,
        default: OutcomeKind = OutcomeKind.ANSWERED,
    ) -> None:
        self.kind = kind
        self._script = {k: list(v) for k, v in (script or {}).items()}
        self._default = default
        self.executed: list[tuple[str, str]] = []  # (execution key, client external id)
        self._done: dict[str, Outcome] = {}
        self.gate: asyncio.Event | None = None  # when set, executions wait for it

    async def execute(self, attempt: Attempt, client: Client) -> Outcome:
        key = execution_key(attempt)
        if key in self._done:
            return self._done[key]
        if self.gate is not None:
            await self.gate.wait()
        self.executed.append((key, client.external_id))
        queue = self._script.get(client.external_id)
        step = queue.pop(0) if queue else self._default
        outcome = step if isinstance(step, Outcome) else Outcome(step)
        self._done[key] = outcome
        return outcome


class JournalChannel:
    """Line format: ``<execution key>\\t<channel>\\t<client id>\\t<pid>``."""

    def __init__(self, kind: ChannelKind, path: Path, *, delay_s: float = 0.0) -> None:
        self.kind = kind
        self._path = path
        self._delay_s = delay_s
        self._seen: set[str] = set()
        self._offset = 0
        path.touch(exist_ok=True)

    def _catch_up(self) -> None:
        with self._path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode().splitlines():
            self._seen.add(line.split("\t", 1)[0])

    @staticmethod
    def outcome_for(key: str, kind: ChannelKind) -> OutcomeKind:
        """A fixed mix: mostly success, some busy lines (retried) for calls."""
        if kind is ChannelKind.TELEGRAM:
            return OutcomeKind.DELIVERED
        busy = key.endswith("#1") and zlib.crc32(key.encode()) % 4 == 0
        return OutcomeKind.BUSY if busy else OutcomeKind.ANSWERED

    async def execute(self, attempt: Attempt, client: Client) -> Outcome:
        key = execution_key(attempt)
        self._catch_up()
        if key not in self._seen:
            line = f"{key}\t{self.kind.value}\t{client.id}\t{os.getpid()}\n".encode()
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, line)  # one write of a short line: atomic with O_APPEND
            finally:
                os.close(fd)
            self._seen.add(key)
            if self._delay_s:
                await asyncio.sleep(self._delay_s)  # the call's duration
        return Outcome(self.outcome_for(key, self.kind))
