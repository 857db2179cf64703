"""An in-process stand-in for an answered ``voice.call.Call``, for the scenario runner's tests.

It speaks the same interface (play, stop_playback, frames, keypresses, hangup...) and reacts to
each prompt the robot plays with the next scripted reply: words (loud 20 ms frames followed by
silence, plus the words for the paired recogniser), keys, silence, or a hang-up. Its audio is
endless silence otherwise, so the listener's timeouts run on audio time, as they do on a line.
"""

from __future__ import annotations

import asyncio
import math
from array import array
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

FRAME = 320
SILENCE = bytes(FRAME)


def _loud_frame() -> bytes:
    return array(
        "h", (int(6000 * math.sin(2 * math.pi * 300 * i / 8000)) for i in range(160))
    ).tobytes()


LOUD = _loud_frame()


@dataclass(frozen=True)
class Say:
    text: str
    seconds: float = 1.0
    during_prompt: bool = False  # barge in: start talking as soon as the prompt starts


@dataclass(frozen=True)
class Press:
    keys: str


@dataclass(frozen=True)
class HangUp:
    pass


@dataclass(frozen=True)
class Audio:
    """The far end sends this 8 kHz PCM from the moment the prompt starts (an answering
    machine's greeting plays over the robot)."""

    pcm: bytes
    during_prompt: bool = True


Reply = Say | Press | HangUp | Audio | None


class FakeCall:
    def __init__(self, replies: list[Reply], uuid: str = "fake-call", pace_s: float = 0.0) -> None:
        self.uuid = uuid
        self.pace_s = pace_s  # wall time per 20 ms frame (0: as fast as the runner takes them)
        self.replies = deque(replies)
        self.played: list[bytes | Path] = []
        self.completed: list[bool] = []
        self.spoken: deque[str] = deque()  # words for the paired recogniser, in order
        self.stopped = 0
        self._audio: deque[bytes] = deque()
        self._keys: asyncio.Queue[str | None] = asyncio.Queue()
        self._ended = asyncio.Event()
        self._cut = asyncio.Event()
        self._played = asyncio.Event()
        self._playing_until: int | None = None
        self.clock = 0  # frames of the client's audio so far (20 ms each)
        self.hung_up_by: str | None = None

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def _react(self, before: bool) -> None:
        reply = self.replies[0] if self.replies else None
        if before != (isinstance(reply, Say | Audio) and reply.during_prompt):
            return
        if self.replies:
            self.replies.popleft()
        if isinstance(reply, Say):
            self.spoken.append(reply.text)
            self._audio.extend([LOUD] * round(reply.seconds / 0.02))
        elif isinstance(reply, Press):
            for key in reply.keys:
                self._keys.put_nowait(key)
        elif isinstance(reply, Audio):
            whole = len(reply.pcm) // FRAME * FRAME
            self._audio.extend(reply.pcm[i : i + FRAME] for i in range(0, whole, FRAME))
        elif isinstance(reply, HangUp):
            self.hung_up_by = "client"
            self._end()

    async def play(self, audio: bytes | Path) -> bool:
        """Lasts as many frames of the client's audio as the prompt has (audio time)."""
        if self.ended:
            return False
        self.played.append(audio)
        size = len(audio) if isinstance(audio, bytes) else audio.stat().st_size - 44  # noqa: ASYNC240
        self._cut.clear()
        self._playing_until = self.clock + max(1, size // FRAME)
        self._played.clear()
        self._react(before=True)
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._played, self._cut, self._ended)]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        self._playing_until = None
        done = self._played.is_set() and not self._cut.is_set() and not self.ended
        self.completed.append(done)
        if not self.ended:
            self._react(before=False)
        return done

    def stop_playback(self) -> None:
        self.stopped += 1
        self._cut.set()

    async def frames(self) -> AsyncIterator[bytes]:
        while not self.ended:
            yield self._audio.popleft() if self._audio else SILENCE
            self.clock += 1
            if self._playing_until is not None and self.clock >= self._playing_until:
                self._played.set()
            await asyncio.sleep(self.pace_s)

    async def keypresses(self) -> AsyncIterator[str]:
        while (key := await self._keys.get()) is not None:
            yield key

    def _end(self) -> None:
        self._ended.set()
        self._keys.put_nowait(None)

    async def hangup(self) -> None:
        if not self.ended:
            self.hung_up_by = "robot"
            self._end()


class HeardWordsRecognizer:
    """The recogniser paired with a FakeCall: at each utterance end, the next words it said."""

    def __init__(self, call: FakeCall) -> None:
        self.call = call

    def accept(self, pcm: bytes) -> str | None:
        return None

    def final(self) -> str:
        return self.call.spoken.popleft() if self.call.spoken else ""


class ToneSynth:
    """SpeechSynth double: 10 ms of tone per character, and a log of the texts."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def synth(self, text: str) -> bytes:
        self.texts.append(text)
        return LOUD * max(1, len(text) // 2)
