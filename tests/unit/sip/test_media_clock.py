"""One shared media clock paces many RTP streams over real UDP sockets (on both event loops, see
conftest.py): every stream delivers every frame of its prompt in order, with consecutive
sequence numbers and timestamps, one frame per stream per tick (no stream runs ahead of another),
and each tick's robot audio reaches the stream's recorder in the same order."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator

import numpy as np
import pytest

from voice.media import FRAME_BYTES, SAMPLES, FrameQueue, MediaClock, RtpStream, _codec

STREAMS = 40
FRAMES = 12
HALF = FRAME_BYTES // 2


class Peer(asyncio.DatagramProtocol):
    """Collects one stream's packets; ``full`` is set once ``FRAMES`` have come."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.full = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)
        if len(self.packets) >= FRAMES:
            self.full.set()


class Recorder:
    def __init__(self) -> None:
        self.robot: list[bytes | None] = []

    def write_tick(self, robot: bytes | None, client: bytes | None) -> None:
        self.robot.append(None if robot is None else bytes(robot))


def prompt(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-8000, 8000, FRAMES * FRAME_BYTES // 2, dtype="<i2").tobytes()


def frames(pcm: bytes) -> Iterator[bytes]:
    for i in range(0, len(pcm), FRAME_BYTES):
        yield pcm[i : i + FRAME_BYTES]


async def test_many_streams_on_one_clock_each_deliver_every_frame_in_order() -> None:
    loop = asyncio.get_running_loop()
    closing: list[asyncio.BaseTransport] = []
    streams: list[RtpStream] = []
    peers: list[Peer] = []
    recorders: list[Recorder] = []
    prompts = [prompt(seed) for seed in range(STREAMS)]
    async with MediaClock() as clock:
        try:
            for _ in prompts:
                peer_transport, peer = await loop.create_datagram_endpoint(
                    Peer, local_addr=("127.0.0.1", 0), family=socket.AF_INET
                )
                transport, stream = await loop.create_datagram_endpoint(
                    RtpStream, local_addr=("127.0.0.1", 0), family=socket.AF_INET
                )
                closing += [peer_transport, transport]
                stream.configure(
                    payload_type=8,
                    codec="PCMA",
                    remote=("127.0.0.1", peer_transport.get_extra_info("sockname")[1]),
                    dtmf_payload_types=frozenset(),
                )
                stream.recorder = recorder = Recorder()
                streams.append(stream)
                peers.append(peer)
                recorders.append(recorder)
            played = [stream.play(pcm) for stream, pcm in zip(streams, prompts, strict=True)]
            for stream in streams:
                clock.add(stream)
            assert len(clock) == STREAMS
            first = await next(asyncio.as_completed(played))
            assert first is True
            # one ticker: when the first prompt is out, every other stream is at most a frame
            # behind it (each tick sends one frame of every stream)
            assert min(s.packets_sent for s in streams) >= FRAMES - 1
            assert all(await asyncio.gather(*played))
            async with asyncio.timeout(30):
                await asyncio.gather(*(peer.full.wait() for peer in peers))
            for stream in streams:
                clock.remove(stream)
            assert len(clock) == 0
        finally:
            for transport in closing:
                transport.close()
    codec = _codec("PCMA")
    for pcm, peer, recorder in zip(prompts, peers, recorders, strict=True):
        packets = peer.packets[:FRAMES]
        encoded = codec.encode(pcm)
        assert [p[12:] for p in packets] == [
            encoded[i * HALF : (i + 1) * HALF] for i in range(FRAMES)
        ]
        headers = [struct.unpack("!BBHII", p[:12]) for p in packets]
        assert {(h[0], h[1], h[4]) for h in headers} == {(0x80, 8, headers[0][4])}
        assert [(h[2] - headers[0][2]) & 0xFFFF for h in headers] == list(range(FRAMES))
        assert [(h[3] - headers[0][3]) & 0xFFFFFFFF for h in headers] == [
            i * SAMPLES for i in range(FRAMES)
        ]
        assert recorder.robot[:FRAMES] == list(frames(pcm))


async def test_client_frames_keep_the_newest_and_wake_a_waiting_reader() -> None:
    queue = FrameQueue(3)
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)  # the reader is now waiting
    assert not reader.done()
    queue.put_nowait(b"a")
    assert await reader == b"a"
    for frame in (b"1", b"2", b"3", b"4"):
        queue.put_nowait(frame)
    assert queue.full()
    assert [queue.get_nowait() for _ in range(3)] == [b"2", b"3", b"4"]
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
