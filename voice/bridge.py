"""A call handed to a manager through Povtor, for trunks that refuse REFER: the manager's call
(a second call on the same trunk) and the client's call joined until one side hangs up.

Each leg's decoded audio is sent on to the other (G.711 both ways, so PCMU and PCMA legs join);
what the client hears is written to the call's recording as the robot's side, so the recording
holds both people. Keypad digits go on as RFC 4733 events. When one side hangs up, the other
gets a BYE.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

import numpy as np

from voice.sip.leg import first_set

if TYPE_CHECKING:
    from voice.call import Call

log = logging.getLogger(__name__)

RINGBACK_HZ = 425.0  # the ringback tone of Russian exchanges: 425 Hz, 1 s on, 4 s off
RINGBACK_ON_S, RINGBACK_OFF_S = 1.0, 4.0


@functools.lru_cache(maxsize=4)
def ringback(seconds: float) -> bytes:
    """``seconds`` of ringback (8 kHz 16-bit mono PCM), played to the client while the
    manager's phone rings, so the line is not silent."""
    rate = 8000
    t = np.arange(int(rate * RINGBACK_ON_S)) / rate
    on = (4000 * np.sin(2 * np.pi * RINGBACK_HZ * t)).astype("<i2")
    cycle = np.concatenate([on, np.zeros(int(rate * RINGBACK_OFF_S), dtype="<i2")])
    cycles = int(np.ceil(seconds / (RINGBACK_ON_S + RINGBACK_OFF_S)))
    return np.tile(cycle, max(1, cycles)).tobytes()


class Bridge:
    """Two answered calls joined: audio and keypad relayed both ways, ended together."""

    def __init__(self, client: Call, manager: Call) -> None:
        self.client = client
        self.manager = manager
        self.ended_by = ""  # "client", "manager" or "robot" (the call was ended from our side)
        self.digits_relayed = ""
        self.parted = asyncio.Event()  # the two calls are no longer joined

    def join(self) -> None:
        client, manager = self.client, self.manager
        client.stop_playback()
        client.stream.on_audio = manager.stream.relay
        manager.stream.on_audio = client.stream.relay
        client.relay_digit = self._to_manager
        manager.relay_digit = client.stream.send_dtmf

    def _to_manager(self, digit: str) -> None:
        if self.manager.stream.send_dtmf(digit):
            self.digits_relayed += digit

    def part(self) -> None:
        client, manager = self.client, self.manager
        client.stream.on_audio = manager.stream.on_audio = None
        client.relay_digit = manager.relay_digit = None

    async def hold(self) -> None:
        """Until one side hangs up; then the other is hung up too (BYE)."""
        client, manager = self.client, self.manager
        try:
            await first_set(
                None, client.leg.ended, manager.leg.ended, client.hangup_requested, manager.done
            )
        finally:
            self.part()
            if manager.leg.ended.is_set() and not client.leg.ended.is_set():
                self.ended_by = "manager"
                client.hangup_requested.set()
            elif client.leg.ended.is_set():
                self.ended_by = "client" if client.leg.remote_hangup else "robot"
            else:
                self.ended_by = "robot"
            manager.hangup_requested.set()
            self.parted.set()
            log.info("Call %s: bridge to the manager ended by the %s", client.uuid, self.ended_by)
