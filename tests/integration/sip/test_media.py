"""Media against SIPp: RTP that stops, PCMA, RFC 4733 keypad with payload types 101 and 121."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from povtor.domain import OutcomeKind
from tests.integration.sip.peers import (
    SIPP_SHARE,
    dtmf_packets,
    pcma_packets,
    peak_frequency,
    start_sipp,
    tone,
    write_pcap,
)

pytestmark = pytest.mark.sip


async def test_client_rtp_that_stops_ends_the_call_with_our_bye(tmp_path: Path, engine_for):
    write_pcap(tmp_path / "audio.pcap", pcma_packets(tone(600, 0.5)))
    sipp = await start_sipp(tmp_path, "rtp_stops")
    async with engine_for(sipp.port, rtp_timeout_s=1.0) as engine:
        call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}")
        assert await call.wait_answered()
        heard = [frame async for frame in call.frames()]  # ends when the call ends
        result = await call.wait_ended()
    assert await sipp.finish() == 0, sipp.log()  # it got our BYE
    assert call.stream.codec_name == "PCMA"
    assert result.outcome is OutcomeKind.ANSWERED
    assert result.hung_up_by == "robot"
    assert "RTP timeout" in result.reason
    assert 20 <= result.packets_received <= 25
    assert abs(peak_frequency(b"".join(heard)) - 600) < 10
    assert result.duration_s < 4


@pytest.mark.parametrize(
    ("payload_type", "other", "expected"),
    [
        # we offer 101: SIPp's 101 digit "1" counts, a 121 event "9" is not ours
        (101, 121, "1#"),
        # we offer 121: the 121 event "9" counts, the shipped 101 capture of "1" does not
        (121, 101, "9#"),
    ],
)
async def test_keypad_digits_come_by_negotiated_rfc4733_type_and_by_info(
    tmp_path: Path, engine_for, payload_type: int, other: int, expected: str
):
    shipped_one = SIPP_SHARE / "dtmf_2833_1.pcap"  # digit 1 with payload type 101
    nine = write_pcap(tmp_path / "nine.pcap", dtmf_packets(9, 121))
    first, second = (shipped_one, nine) if payload_type == 101 else (nine, shipped_one)
    shutil.copy(first, tmp_path / "first.pcap")
    shutil.copy(second, tmp_path / "second.pcap")
    sipp = await start_sipp(
        tmp_path, "dtmf", keys={"dtmf_pt": str(payload_type), "info_signal": "#"}
    )
    async with engine_for(sipp.port, dtmf_payload_type=payload_type) as engine:
        call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}")
        assert await call.wait_answered()
        digits = ""
        while len(digits) < 2:
            digit = await call.next_digit(5)
            assert digit is not None, f"only {digits!r} arrived"
            digits += digit
        result = await call.hangup()
    assert await sipp.finish() == 0, sipp.log()
    assert digits == expected
    assert result.dtmf == expected
    assert other not in call.stream.dtmf_payload_types
