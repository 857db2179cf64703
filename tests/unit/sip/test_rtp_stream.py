"""The robot's side of an RTP stream over a real UDP socket: queued prompts go out frame by
frame in order, each play resolves when its last frame is sent, a stop drops what is left and
resolves the rest to False, and silence fills every tick without audio."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from voice.media import FRAME_BYTES, LatenessStats, RtpStream, _codec

HALF = FRAME_BYTES // 2


class Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.put_nowait(data)


def prompt(frames: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-8000, 8000, frames * FRAME_BYTES // 2, dtype="<i2").tobytes()


@pytest.fixture
async def stream_and_peer() -> tuple[RtpStream, Receiver]:
    loop = asyncio.get_running_loop()
    peer_transport, peer = await loop.create_datagram_endpoint(
        Receiver, local_addr=("127.0.0.1", 0), family=socket.AF_INET
    )
    peer_port = peer_transport.get_extra_info("sockname")[1]
    transport, stream = await loop.create_datagram_endpoint(
        RtpStream, local_addr=("127.0.0.1", 0), family=socket.AF_INET
    )
    remote = ("127.0.0.1", peer_port)
    stream.configure(payload_type=0, codec="PCMU", remote=remote, dtmf_payload_types=frozenset())
    yield stream, peer
    transport.close()
    peer_transport.close()


async def payloads(peer: Receiver, count: int) -> list[bytes]:
    return [(await peer.packets.get())[12:] for _ in range(count)]


async def test_prompts_go_out_frame_by_frame_in_order_and_resolve_at_their_last_frame(
    stream_and_peer: tuple[RtpStream, Receiver],
) -> None:
    stream, peer = stream_and_peer
    stats = LatenessStats()
    first, second = prompt(3, 1), prompt(2, 2) + bytes(100)  # the second not frame-aligned
    one, two = stream.play(first), stream.play(second)
    assert stream.playing
    sent = []
    for tick in range(6):
        sent.append(stream.send_tick(0.0, stats))
        assert one.done() == (tick >= 2)
        assert two.done() == (tick >= 5)
    assert one.result() is True
    assert two.result() is True
    assert not stream.playing
    padded = second + bytes(FRAME_BYTES - 100)
    audio = first + padded
    assert sent == [audio[i * FRAME_BYTES : (i + 1) * FRAME_BYTES] for i in range(6)]
    codec = _codec("PCMU")
    got = await payloads(peer, 6)
    assert got == [codec.encode(audio)[i * HALF : (i + 1) * HALF] for i in range(6)]
    assert stream.send_tick(0.0, stats) is None  # nothing queued: silence
    assert await payloads(peer, 1) == [codec.encode(bytes(FRAME_BYTES))]


async def test_a_stop_drops_what_is_left_and_later_prompts_play_whole(
    stream_and_peer: tuple[RtpStream, Receiver],
) -> None:
    stream, _peer = stream_and_peer
    stats = LatenessStats()
    one, two = stream.play(prompt(4, 3)), stream.play(prompt(2, 4))
    stream.send_tick(0.0, stats)
    stream.stop_playback()
    assert one.result() is False
    assert two.result() is False
    assert not stream.playing
    assert stream.send_tick(0.0, stats) is None
    after = prompt(2, 5)
    three = stream.play(after)
    assert [stream.send_tick(0.0, stats) for _ in range(2)] == [
        after[:FRAME_BYTES],
        after[FRAME_BYTES:],
    ]
    assert three.result() is True
    assert stream.play(b"").result() is True  # nothing to say: done at once
