"""An in-memory ``povtor.ports.CallHistory`` for the dashboard's pages.

Held to the same contract as ``voice.call_history.SqlCallHistory``
(tests/integration/recording/test_call_history_contract.py): newest call first (ties: higher
id first), the dialogue in time order without empty lines, a recorded call without a finished
transcript is "pending", a recording whose file is gone is served as missing.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from povtor.domain import OutcomeKind
from povtor.ports import CallView, DialogueLine


def _in_time_order(dialogue: Sequence[DialogueLine]) -> tuple[DialogueLine, ...]:
    lines = [line for line in dialogue if line.text]
    return tuple(sorted(lines, key=lambda line: (line.start, line.speaker)))


class FakeCallHistory:
    def __init__(self) -> None:
        self._calls: dict[int, CallView] = {}
        self._files: dict[int, Path] = {}

    def add(
        self,
        call_id: int,
        client_id: int,
        started_at: datetime,
        dialogue: Sequence[DialogueLine] = (),
        recording: Path | None = None,
        *,
        outcome: OutcomeKind = OutcomeKind.ANSWERED,
        talk_s: float | None = None,
    ) -> CallView:
        """A call; ``talk_s`` defaults to the end of its dialogue."""
        lines = _in_time_order(dialogue)
        if talk_s is None and lines:
            talk_s = max(line.end for line in lines)
        state = "done" if lines else ("pending" if recording is not None else None)
        view = CallView(
            id=call_id,
            client_id=client_id,
            started_at=started_at,
            direction="out",
            outcome=outcome,
            talk_s=talk_s,
            has_recording=recording is not None,
            transcript_state=state,
            dialogue=lines,
        )
        self._calls[call_id] = view
        if recording is not None:
            self._files[call_id] = recording
        return view

    async def calls_for_client(self, client_id: int, limit: int = 20) -> Sequence[CallView]:
        calls = [c for c in self._calls.values() if c.client_id == client_id]
        return sorted(calls, key=lambda c: (c.started_at, c.id), reverse=True)[:limit]

    async def get_call(self, call_id: int) -> CallView | None:
        return self._calls.get(call_id)

    async def recording_path(self, call_id: int) -> Path | None:
        path = self._files.get(call_id)
        return path if path is not None and path.is_file() else None

    def set_state(self, call_id: int, transcript_state: str) -> None:
        self._calls[call_id] = replace(self._calls[call_id], transcript_state=transcript_state)

    def transcribe(self, call_id: int, dialogue: Sequence[DialogueLine]) -> None:
        """The call's transcript is done: its dialogue, in time order."""
        self._calls[call_id] = replace(
            self._calls[call_id], transcript_state="done", dialogue=_in_time_order(dialogue)
        )

    def forget_recording(self, call_id: int) -> None:
        self._files.pop(call_id, None)
        self._calls[call_id] = replace(self._calls[call_id], has_recording=False)


def write_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A stereo 16-bit WAV like the robot's recordings (robot left, client right); its bytes."""
    frames = int(seconds * rate)
    samples = b"".join((i % 200).to_bytes(2, "little", signed=True) * 2 for i in range(frames))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples)
    return path.read_bytes()
