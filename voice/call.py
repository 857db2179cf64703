"""One outbound call as the scenario engine sees it: audio, keypad, hang-up, outcome."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from povtor.domain import OutcomeKind
from povtor.errors import AudioError
from voice.media import RtpStream
from voice.sip.leg import OutgoingLeg
from voice.transfer import Transfer

if TYPE_CHECKING:
    from voice.bridge import Bridge


class Recorder(Protocol):
    """What the engine needs from a call recorder (voice.recording.CallRecorder fits)."""

    def write_tick(self, robot: bytes | None, client: bytes | None) -> None: ...

    async def finish(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class CallResult:
    """How a call ended; times are UTC, durations in seconds."""

    call_uuid: str
    trunk: str
    outcome: OutcomeKind
    sip_code: int | None
    reason: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    ring_s: float | None  # INVITE to first ringing, when the trunk reported ringing
    setup_s: float  # INVITE to the final answer (or the end)
    duration_s: float  # talk time: answer to hang-up, 0 when not answered
    hung_up_by: str | None  # "robot", "client" or None when never answered
    dtmf: str
    recording: Any | None  # voice.recording.RecordingInfo when the call was recorded
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    trunk_failure: bool = False  # the trunk sent nothing, or a 5xx: ours, not the client's


def load_prompt(path: Path) -> bytes:
    """8 kHz 16-bit mono PCM from a WAV (other formats go through ffmpeg)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1):
                return wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        pass
    except OSError as err:
        raise AudioError(f"cannot read {path.name}: {err}") from err
    from voice.audio import load_audio  # pydub/ffmpeg only for unusual files

    return load_audio(path).channels[0].samples.astype("<i2").tobytes()


class Call:
    """Created by :meth:`voice.engine.CallEngine.start_call`; the engine drives its lifecycle."""

    def __init__(self, call_uuid: str, trunk: str, leg: OutgoingLeg, stream: RtpStream) -> None:
        self.uuid = call_uuid
        self.trunk = trunk
        self.leg = leg
        self.stream = stream
        self.started_at = datetime.now(UTC)
        self.result: CallResult | None = None
        self.dtmf = ""
        self.hangup_requested = asyncio.Event()
        self.done = asyncio.Event()
        self.prompt_started = False
        self.hung_up_mid_prompt = False
        self._keys: asyncio.Queue[str | None] = asyncio.Queue()
        stream.on_dtmf = self._on_digit
        leg.on_dtmf = self._on_digit
        # set by the engine: a second call to the target joined to this one (trunks without
        # REFER); while joined, digits go to the other leg instead of the scenario
        self.bridge_to: Callable[[Call, str, float], Awaitable[Transfer]] | None = None
        self.bridge: Bridge | None = None
        self.bridge_leg = False  # this is the manager's call of a bridge
        self.transfer_by = "refer"  # the trunk's: "refer", or "bridge" (no REFER tried)
        self.relay_digit: Callable[[str], object] | None = None

    def _on_digit(self, digit: str) -> None:
        self.dtmf += digit
        if self.relay_digit is not None:
            self.relay_digit(digit)
            return
        self._keys.put_nowait(digit)

    # --- state ---

    @property
    def answered(self) -> bool:
        return self.leg.answered.is_set() and self.leg.media is not None

    @property
    def ended(self) -> bool:
        return self.done.is_set()

    @property
    def outcome(self) -> OutcomeKind | None:
        return self.result.outcome if self.result is not None else None

    @property
    def sip_code(self) -> int | None:
        return self.leg.final_code

    async def wait_answered(self) -> bool:
        """True once the client answered; False when the call ended without an answer."""
        answered = asyncio.ensure_future(self.leg.answered.wait())
        done = asyncio.ensure_future(self.done.wait())
        try:
            await asyncio.wait({answered, done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            answered.cancel()
            done.cancel()
        if self.leg.answered.is_set() and self.leg.media is None:
            await self.done.wait()  # unusable media: the engine hangs up at once
        return self.answered and not self.leg.ended.is_set()

    async def wait_ended(self) -> CallResult:
        await self.done.wait()
        assert self.result is not None
        return self.result

    # --- audio ---

    async def play(self, audio: bytes | Path) -> bool:
        """Say ``audio`` (8 kHz 16-bit mono PCM, or a WAV file); True when played to the end.

        Returns False at once when the call is not up, or when the playback was cut short by
        :meth:`stop_playback` or the end of the call.
        """
        pcm = await asyncio.to_thread(load_prompt, audio) if isinstance(audio, Path) else audio
        if not self.answered or self.done.is_set() or self.leg.ended.is_set():
            return False
        self.prompt_started = True
        return await self.stream.play(pcm)

    def stop_playback(self) -> None:
        """Cut the robot short (the client started talking)."""
        self.stream.stop_playback()

    @property
    def playing(self) -> bool:
        return self.stream.playing

    async def frames(self) -> AsyncIterator[bytes]:
        """The client's audio: 20 ms frames of 8 kHz 16-bit mono PCM until the call ends."""
        queue = self.stream.client_frames
        ended = asyncio.ensure_future(self.done.wait())
        getter: asyncio.Future[bytes] | None = None
        try:
            while True:
                if not queue.empty():
                    yield queue.get_nowait()
                    continue
                if ended.done():
                    return
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, ended}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    frame, getter = getter.result(), None
                    yield frame
                else:
                    getter.cancel()
                    getter = None
        finally:
            ended.cancel()
            if getter is not None:  # the reader was cancelled while waiting for a frame
                getter.cancel()

    async def keypresses(self) -> AsyncIterator[str]:
        """Keypad digits (RFC 4733 or SIP INFO) as they come, until the call ends."""
        while True:
            digit = await self._keys.get()
            if digit is None:
                return
            yield digit

    async def next_digit(self, wait_s: float) -> str | None:
        """The next keypad digit, or None after ``wait_s`` seconds or when the call ends."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                return await self._keys.get()
        return None

    async def hangup(self) -> CallResult:
        """End the call whatever its state (BYE, or CANCEL while ringing); returns the result."""
        self.hangup_requested.set()
        return await self.wait_ended()

    async def transfer(self, target: str, wait_s: float) -> Transfer:
        """Hand the client to ``target`` by SIP REFER and follow it (see OutgoingLeg.refer);
        where the trunk refuses REFER (or its ``transfer_by`` is ``bridge``), call ``target``
        on the same trunk and join the two calls (see voice.bridge). Connected by a bridge,
        the call goes on until the client or the manager hangs up."""
        if not self.answered or self.done.is_set():
            return Transfer(target, "ended", reason="the call is not up")
        self.stop_playback()
        tried: Transfer | None = None
        if self.transfer_by == "refer":
            tried = replace(await self.leg.refer(target, wait_s), route="refer")
            if not tried.refer_refused or self.leg.ended.is_set():
                return tried
        if self.bridge_to is None:
            return tried or Transfer(target, "unsupported", reason="this call cannot bridge")
        bridged = await self.bridge_to(self, target, wait_s)
        return bridged.after_refer(tried) if tried is not None else bridged

    def _close_keys(self) -> None:
        self._keys.put_nowait(None)
