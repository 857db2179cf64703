"""RTP media for calls: G.711 streams paced by one shared monotonic 20 ms clock.

One :class:`MediaClock` serves every stream of a worker. Streams are spread over a few phase
slots (5 ms apart) so a tick handles a quarter of the calls; each outgoing frame has a
scheduled time ``t0 + k*20 ms`` and its lateness (send time minus schedule) is counted.
A late clock sends the overdue frames at once rather than dropping them, so the RTP
timestamps stay exact. :class:`RtpStream` is one call's socket: it sends the robot's audio
(or silence), decodes the client's audio into 20 ms frames, receives RFC 4733 telephone
events with the negotiated payload types, latches onto the source of incoming RTP (symmetric
RTP) and counts loss from sequence numbers; a whole 20 ms packet (the usual case) goes to the
client's :class:`FrameQueue` as it was decoded, with no copy. Two streams can be bridged (a
call handed to a manager through Povtor): each decoded frame of one is relayed to the other
(:meth:`RtpStream.relay`), and keypad digits are sent on as RFC 4733 events
(:meth:`RtpStream.send_dtmf`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiortp.codecs.g711 import PcmaCodec, PcmuCodec

logger = logging.getLogger(__name__)

PTIME = 0.020
SAMPLES = 160  # per 20 ms frame at 8 kHz
FRAME_BYTES = 320  # 16-bit mono PCM per frame
SLOTS = 4
_PAYLOAD = SAMPLES  # G.711: one byte per sample
_HEADER = struct.Struct("!BBHII")
_MAX_CATCH_UP = 0.5  # seconds behind after which the clock restarts its schedule
_DTMF_DIGITS = "0123456789*#ABCD"
RELAY_MAX_FRAMES = 10  # relayed audio queued beyond 200 ms: the oldest is dropped (no drift)
_DTMF_FRAMES = 5  # a relayed digit lasts 100 ms...
_DTMF_END_COPIES = 3  # ...and its end is sent three times (RFC 4733 2.5.1.4)


class TickSink(Protocol):
    """Receives one pair of frames per 20 ms tick (a call recorder)."""

    def write_tick(self, robot: bytes | None, client: bytes | None) -> None: ...


def _codec(name: str) -> PcmuCodec | PcmaCodec:
    return PcmuCodec() if name == "PCMU" else PcmaCodec()


@dataclass
class LatenessStats:
    """Histogram of outgoing-frame lateness in 0.1 ms buckets (last bucket: >= 100 ms)."""

    buckets: list[int] = field(default_factory=lambda: [0] * 1001)
    frames: int = 0
    slips: int = 0  # schedule restarts after falling more than 0.5 s behind

    def add(self, late: float) -> None:
        index = int(late * 10000)
        self.buckets[index if 0 <= index < 1000 else (0 if index < 0 else 1000)] += 1
        self.frames += 1

    def percentile(self, q: float) -> float:
        """Lateness in ms below which ``q`` (0..1) of the frames were sent."""
        if not self.frames:
            return 0.0
        target = q * self.frames
        seen = 0
        for index, count in enumerate(self.buckets):
            seen += count
            if seen >= target:
                return index / 10
        return 100.0

    def reset(self) -> None:
        self.buckets = [0] * 1001
        self.frames = 0
        self.slips = 0


@functools.lru_cache(maxsize=64)
def _encoded(codec: str, pcm: bytes) -> tuple[bytes, bytes]:
    """A prompt padded to whole frames and encoded, once per codec: the same prompt (the same
    bytes from the speech cache) is said to every client, often by a hundred calls at once."""
    if len(pcm) % FRAME_BYTES:
        pcm = pcm + bytes(FRAME_BYTES - len(pcm) % FRAME_BYTES)
    return _codec(codec).encode(pcm), pcm


@dataclass(slots=True)
class _Clip:
    """One queued prompt: its codec bytes and PCM whole, sent a frame's slice per tick (cut
    at send time, so queueing a prompt costs the same however long it is)."""

    payload: bytes
    pcm: bytes
    frames: int
    sent: int = 0


class FrameQueue:
    """The client's decoded 20 ms frames, at most ``maxsize``: when nobody reads fast enough
    the oldest is dropped. What :class:`asyncio.Queue` did here, at a third of its cost per
    frame (a bounded deque and one waiter future instead of a get, a put and two wake-up
    checks for every packet of every call)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._frames: deque[bytes] = deque(maxlen=maxsize)
        self._waiters: list[asyncio.Future[None]] = []

    def qsize(self) -> int:
        return len(self._frames)

    def empty(self) -> bool:
        return not self._frames

    def full(self) -> bool:
        return len(self._frames) >= self.maxsize

    def put_nowait(self, frame: bytes) -> None:
        self._frames.append(frame)  # a full deque drops its oldest frame
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def get_nowait(self) -> bytes:
        if not self._frames:
            raise asyncio.QueueEmpty
        return self._frames.popleft()

    async def get(self) -> bytes:
        while not self._frames:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return self._frames.popleft()


class RtpStream(asyncio.DatagramProtocol):
    """One call's RTP socket: robot audio out at 20 ms, client audio and keypad in."""

    def __init__(
        self,
        *,
        symmetric: bool = True,
        on_dtmf: Callable[[str], None] | None = None,
        client_queue_frames: int = 250,
    ) -> None:
        self.payload_type = -1  # nothing is sent or decoded before configure()
        self.codec_name = "PCMU"
        self._codec = _codec("PCMU")
        self.remote: tuple[str, int] = ("0.0.0.0", 0)
        self.dtmf_payload_types: frozenset[int] = frozenset()
        self.symmetric = symmetric
        self.on_dtmf = on_dtmf
        self.on_audio: Callable[[bytes], None] | None = None  # each decoded 20 ms frame
        self.dtmf_send_type: int | None = None  # telephone-event payload type the far end takes
        self.recorder: TickSink | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._latched = False
        # outgoing
        self._ssrc = int.from_bytes(os.urandom(4), "big")
        self._seq = int.from_bytes(os.urandom(2), "big")
        self._ts = int.from_bytes(os.urandom(4), "big")
        self._silence = self._codec.encode(bytes(FRAME_BYTES))
        self._out: deque[_Clip] = deque()
        self._marks: deque[tuple[int, asyncio.Future[bool]]] = deque()
        self._relayed: deque[bytes] = deque(maxlen=RELAY_MAX_FRAMES)
        self._events: deque[bytes] = deque()  # RFC 4733 payloads, one per tick
        self._event_ts = 0
        self._queued = 0  # frames ever queued
        self._sent_audio = 0  # queued frames sent so far
        self.packets_sent = 0
        # incoming
        self.client_frames = FrameQueue(client_queue_frames)
        self._rx_pcm = bytearray()  # decoded client audio not yet cut into frames
        self._rec_pcm = bytearray()  # client audio waiting for the recorder's tick
        self.packets_received = 0
        self.last_rx: float | None = None
        self._base_seq: int | None = None
        self._max_seq = 0  # extended
        self._last_dtmf_ts: int | None = None
        self.dtmf_received = ""

    def configure(
        self,
        *,
        payload_type: int,
        codec: str,
        remote: tuple[str, int],
        dtmf_payload_types: frozenset[int],
    ) -> None:
        """Set what was negotiated (on answer, or a re-INVITE moving the far end)."""
        if codec != self.codec_name:
            self._codec = _codec(codec)
            self._silence = self._codec.encode(bytes(FRAME_BYTES))
        self.payload_type = payload_type
        self.codec_name = codec
        self.remote = remote
        self.dtmf_payload_types = dtmf_payload_types
        self._latched = False

    # --- socket ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def error_received(self, exc: Exception) -> None:
        logger.debug("RTP socket error: %s", exc)

    @property
    def local_port(self) -> int:
        if self._transport is None:
            return 0
        return int(self._transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self.stop_playback()

    # --- outgoing ---

    @property
    def playing(self) -> bool:
        return bool(self._out)

    def play(self, pcm: bytes) -> asyncio.Future[bool]:
        """Queue 8 kHz 16-bit mono PCM; the future is True once its last frame was sent."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        payload, pcm = _encoded(self.codec_name, pcm)
        frames = len(pcm) // FRAME_BYTES
        if frames:
            self._out.append(_Clip(payload, pcm, frames))
        self._queued += frames
        if self._queued == self._sent_audio:
            future.set_result(True)
        else:
            self._marks.append((self._queued, future))
        return future

    def relay(self, pcm: bytes) -> None:
        """Send one frame of the other leg's audio (a bridge), after the robot's own audio;
        frames pile up no further than RELAY_MAX_FRAMES (the two clocks drift)."""
        if len(pcm) == FRAME_BYTES:
            self._relayed.append(pcm)

    def send_dtmf(self, digit: str) -> bool:
        """Send a keypad digit as an RFC 4733 event (when the far end took telephone-event)."""
        index = _DTMF_DIGITS.find(digit.upper())
        if self.dtmf_send_type is None or index < 0 or len(digit) != 1:
            return False
        for i in range(_DTMF_FRAMES + _DTMF_END_COPIES):
            end = i >= _DTMF_FRAMES
            duration = SAMPLES * min(i + 1, _DTMF_FRAMES)
            self._events.append(struct.pack("!BBH", index, (0x80 if end else 0) | 10, duration))
        return True

    def stop_playback(self) -> None:
        """Drop queued audio (barge-in or hang-up); pending plays resolve to False."""
        self._sent_audio = self._queued
        self._out.clear()
        while self._marks:
            _, future = self._marks.popleft()
            if not future.done():
                future.set_result(False)

    def send_tick(self, scheduled: float, stats: LatenessStats) -> bytes | None:
        """Send the next frame (robot audio or silence); returns the robot PCM sent, if any.

        A packet is its packed header and a slice of the prompt encoded once: packing into a
        reused buffer was measured slower (a slice assignment into a bytearray costs more than
        the concatenation it saves)."""
        pcm: bytes | None = None
        if self._out:
            clip = self._out[0]
            at = clip.sent
            payload = clip.payload[at * _PAYLOAD : (at + 1) * _PAYLOAD]
            pcm = clip.pcm[at * FRAME_BYTES : (at + 1) * FRAME_BYTES]
            clip.sent = at + 1
            if clip.sent == clip.frames:
                self._out.popleft()
            self._sent_audio += 1
        elif self._relayed:
            pcm = self._relayed.popleft()
            payload = self._codec.encode(pcm)
        else:
            payload = self._silence
        seq, ts = self._seq, self._ts
        if self._events and self.dtmf_send_type is not None:
            # a relayed digit replaces the audio of its ticks; all its packets carry the
            # timestamp of its start, the first one the marker bit
            event = self._events.popleft()
            start = int.from_bytes(event[2:4], "big") == SAMPLES
            if start:
                self._event_ts = ts
            marker = 0x80 if start and not event[1] & 0x80 else 0
            packet = (
                _HEADER.pack(0x80, marker | self.dtmf_send_type, seq, self._event_ts, self._ssrc)
                + event
            )
        else:
            packet = _HEADER.pack(0x80, self.payload_type, seq, ts, self._ssrc) + payload
        transport = self._transport
        if transport is not None:
            transport.sendto(packet, self.remote)
            stats.add(time.monotonic() - scheduled)
            self.packets_sent += 1
        self._seq = (seq + 1) & 0xFFFF
        self._ts = (ts + SAMPLES) & 0xFFFFFFFF
        marks = self._marks
        while marks and marks[0][0] <= self._sent_audio:
            _, future = marks.popleft()
            if not future.done():
                future.set_result(True)
        return pcm

    def record_tick(self, robot: bytes | None) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        client: bytes | None = None
        if len(self._rec_pcm) >= FRAME_BYTES:
            client = bytes(self._rec_pcm[:FRAME_BYTES])
            del self._rec_pcm[:FRAME_BYTES]
        recorder.write_tick(robot, client)

    # --- incoming ---

    @property
    def packets_expected(self) -> int:
        return 0 if self._base_seq is None else self._max_seq - self._base_seq + 1

    @property
    def packets_lost(self) -> int:
        return max(0, self.packets_expected - self.packets_received)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        pt = data[1] & 0x7F
        if 72 <= pt <= 76:
            return  # RTCP on the RTP port (rtcp-mux): not used
        offset = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10:
            if len(data) < offset + 4:
                return
            offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
        end = len(data) - (data[-1] if data[0] & 0x20 else 0)
        if end <= offset:
            return
        if self.payload_type < 0:
            return  # early media before the answer: not ours to play or record
        if self.symmetric and not self._latched:
            self._latched = True
            if addr[:2] != self.remote:
                logger.info("Symmetric RTP: sending to the source of incoming media")
                self.remote = (addr[0], addr[1])
        self._count(int.from_bytes(data[2:4], "big"))
        if pt in self.dtmf_payload_types:
            self._telephone_event(data[offset:end], int.from_bytes(data[4:8], "big"))
        elif pt == self.payload_type:
            self._audio(self._codec.decode(data[offset:end]))

    def _count(self, seq: int) -> None:
        self.packets_received += 1
        self.last_rx = time.monotonic()
        if self._base_seq is None:
            self._base_seq = self._max_seq = seq
            return
        last = self._max_seq & 0xFFFF
        delta = (seq - last) & 0xFFFF
        if 0 < delta < 0x8000:
            self._max_seq += delta

    def _audio(self, pcm: bytes) -> None:
        if self.recorder is not None:
            rec = self._rec_pcm
            rec += pcm
            if len(rec) > 5 * FRAME_BYTES:  # bursts beyond 100 ms: keep the newest
                del rec[: len(rec) - 3 * FRAME_BYTES]
        rx = self._rx_pcm
        if not rx and len(pcm) == FRAME_BYTES:  # the usual packet: one whole 20 ms frame
            self._frame(pcm)
            return
        rx += pcm
        while len(rx) >= FRAME_BYTES:
            frame = bytes(rx[:FRAME_BYTES])
            del rx[:FRAME_BYTES]
            self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        if self.on_audio is not None:
            self.on_audio(frame)
        self.client_frames.put_nowait(frame)  # full: its oldest frame is dropped

    def _telephone_event(self, payload: bytes, timestamp: int) -> None:
        if len(payload) < 4 or not payload[1] & 0x80:
            return  # only the end of an event counts; its 3 copies share one timestamp
        if timestamp == self._last_dtmf_ts:
            return
        self._last_dtmf_ts = timestamp
        if payload[0] >= len(_DTMF_DIGITS):
            return
        digit = _DTMF_DIGITS[payload[0]]
        self.dtmf_received += digit
        if self.on_dtmf is not None:
            self.on_dtmf(digit)


class MediaClock:
    """The one 20 ms schedule every stream of a worker is paced by."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.stats = LatenessStats()
        self._slots: list[list[RtpStream]] = [[] for _ in range(slots)]
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return sum(len(s) for s in self._slots)

    async def __aenter__(self) -> MediaClock:
        self._task = asyncio.create_task(self._run(), name="media-clock")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def add(self, stream: RtpStream) -> None:
        min(self._slots, key=len).append(stream)
        self._wakeup.set()

    def remove(self, stream: RtpStream) -> None:
        for slot in self._slots:
            if stream in slot:
                slot.remove(stream)

    async def _run(self) -> None:
        step = PTIME / len(self._slots)
        while True:
            if not len(self):
                self._wakeup.clear()
                await self._wakeup.wait()
            scheduled = time.monotonic()
            index = 0
            while len(self):
                delay = scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -_MAX_CATCH_UP:
                    self.stats.slips += 1
                    scheduled = time.monotonic()
                self._tick(self._slots[index], scheduled)
                index = (index + 1) % len(self._slots)
                scheduled += step

    def _tick(self, streams: list[RtpStream], scheduled: float) -> None:
        stats = self.stats
        sent = [stream.send_tick(scheduled, stats) for stream in streams]
        for stream, robot in zip(streams, sent, strict=True):
            if stream.recorder is not None:
                try:
                    stream.record_tick(robot)
                except Exception:
                    logger.exception("Recorder failed; recording stopped for this call")
                    stream.recorder = None


async def open_stream(
    stream: RtpStream, host: str, port_range: tuple[int, int] | None
) -> RtpStream:
    """Bind ``stream`` on ``host``: an even port from ``port_range``, or any port if None."""
    loop = asyncio.get_running_loop()
    ports: list[int] = [0]
    if port_range is not None and port_range[0] > 0:
        low, high = port_range
        start = low + (os.getpid() * 7919 + int(time.monotonic() * 1000)) % max(1, high - low)
        start -= start % 2
        ports = [low + (start - low + i) % (high - low) for i in range(0, high - low, 2)]
    for port in ports:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        await loop.create_datagram_endpoint(lambda: stream, sock=sock)
        return stream
    raise OSError(f"no free RTP port in {port_range}")
