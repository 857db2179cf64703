"""The stereo WAV layout of call recordings: header, interleaving, repairing a cut-off file."""

from __future__ import annotations

import os
import struct
from array import array

SAMPLE_RATE = 8000
CHANNELS = 2  # left = robot, right = client
SAMPLE_WIDTH = 2  # 16-bit signed little-endian
FRAME_BYTES = 320  # one side of one 20 ms tick: 160 mono samples
BLOCK_ALIGN = CHANNELS * SAMPLE_WIDTH
BYTE_RATE = SAMPLE_RATE * BLOCK_ALIGN
HEADER_BYTES = 44

_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


def wav_header(data_bytes: int) -> bytes:
    """A canonical 44-byte PCM header for ``data_bytes`` of 8 kHz 16-bit stereo audio."""
    return _HEADER.pack(
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        CHANNELS,
        SAMPLE_RATE,
        BYTE_RATE,
        BLOCK_ALIGN,
        SAMPLE_WIDTH * 8,
        b"data",
        data_bytes,
    )


def interleave(left: bytes | bytearray, right: bytes | bytearray) -> bytes:
    """Two mono 16-bit channels of equal length into one stereo stream (L R L R ...)."""
    if len(left) != len(right):
        raise ValueError(f"channels differ in length: {len(left)} != {len(right)}")
    # The samples are only copied, never interpreted, so byte order does not matter here.
    out = array("h", bytes(2 * len(left)))
    out[0::2] = array("h", bytes(left))
    out[1::2] = array("h", bytes(right))
    return out.tobytes()


def deinterleave(stereo: bytes) -> tuple[bytes, bytes]:
    """The inverse of :func:`interleave` (used by tests and tools)."""
    samples = array("h", stereo[: len(stereo) - len(stereo) % BLOCK_ALIGN])
    return samples[0::2].tobytes(), samples[1::2].tobytes()


def repair_header(fd: int) -> int:
    """Make the header of an open, possibly cut-off recording match its size; returns data bytes.

    A trailing partial sample pair (a write cut by a kill) is dropped.
    """
    size = os.fstat(fd).st_size
    data_bytes = max(0, size - HEADER_BYTES)
    data_bytes -= data_bytes % BLOCK_ALIGN
    os.ftruncate(fd, HEADER_BYTES + data_bytes)
    os.pwrite(fd, wav_header(data_bytes), 0)
    return data_bytes
