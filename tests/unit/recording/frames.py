"""Recognisable test frames: every sample of a frame tells which side and tick it belongs to."""

from __future__ import annotations

SAMPLES = 160


def robot_frame(tick: int) -> bytes:
    return (1000 + tick % 20000).to_bytes(2, "little", signed=True) * SAMPLES


def client_frame(tick: int) -> bytes:
    return (-1000 - tick % 20000).to_bytes(2, "little", signed=True) * SAMPLES


def samples_le(data: bytes) -> list[int]:
    """16-bit little-endian samples as ints."""
    return [int.from_bytes(data[i : i + 2], "little", signed=True) for i in range(0, len(data), 2)]
