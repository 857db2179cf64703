"""Pure pieces of the call engine: outcome mapping, INFO keypad, SDP answers, ACK building."""

from __future__ import annotations

import pytest
from aiosipua.message import SipMessage, SipRequest, SipResponse
from aiosipua.sdp import parse_sdp

from povtor.domain import OutcomeKind
from voice.media import LatenessStats
from voice.sip.info import dtmf_from_info
from voice.sip.outcomes import outcome_for
from voice.sip.sdp import SdpMismatch, accept_answer, build_offer
from voice.sip.transactions import build_non2xx_ack, txn_key
from voice.sip.trunks import split_hostport


@pytest.mark.parametrize(
    ("answered", "code", "ring_timeout", "early", "expected"),
    [
        (True, 200, False, False, OutcomeKind.ANSWERED),
        (True, 200, False, True, OutcomeKind.HUNG_UP_EARLY),
        (False, 486, False, False, OutcomeKind.BUSY),
        (False, 600, False, False, OutcomeKind.BUSY),
        (False, 480, False, False, OutcomeKind.NO_ANSWER),
        (False, 408, False, False, OutcomeKind.NO_ANSWER),
        (False, 487, True, False, OutcomeKind.NO_ANSWER),
        (False, None, True, False, OutcomeKind.NO_ANSWER),
        (False, 603, False, False, OutcomeKind.REJECTED),
        (False, 503, False, False, OutcomeKind.FAILED),
        (False, 404, False, False, OutcomeKind.FAILED),
        (False, None, False, False, OutcomeKind.FAILED),
    ],
)
def test_sip_endings_map_to_outcomes(answered, code, ring_timeout, early, expected) -> None:
    got = outcome_for(
        answered=answered, final_code=code, ring_timeout=ring_timeout, client_hung_up_early=early
    )
    assert got is expected


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", "Signal= #\r\n", "#"),
        ("application/dtmf-relay", "Signal=11\r\n", "#"),
        ("Application/DTMF-Relay; charset=x", "signal=*", "*"),
        ("application/dtmf", "7", "7"),
        ("application/dtmf-relay", "Duration=160", None),
        ("application/dtmf-relay", "Signal=X", None),
        ("text/plain", "Signal=5", None),
    ],
)
def test_info_bodies_give_their_keypad_digit(content_type, body, digit) -> None:
    assert dtmf_from_info(content_type, body) == digit


ANSWER = """v=0
o=x 1 1 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 4000 RTP/AVP 8 0 121
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:121 telephone-event/8000
"""


def test_answer_picks_its_first_common_codec_and_both_telephone_event_types() -> None:
    offer = build_offer("127.0.0.1", 5000, dtmf_payload_type=101)
    params = accept_answer(offer, parse_sdp(ANSWER))
    assert params.remote == ("10.0.0.5", 4000)
    assert (params.payload_type, params.codec) == (8, "PCMA")
    assert params.dtmf_payload_types == {101, 121}


def test_answer_without_a_common_codec_is_refused() -> None:
    offer = build_offer("127.0.0.1", 5000, codecs=("PCMU",))
    with pytest.raises(SdpMismatch):
        accept_answer(offer, parse_sdp(ANSWER.replace("RTP/AVP 8 0 121", "RTP/AVP 8 121")))


def test_offer_lists_codecs_in_order_with_telephone_event() -> None:
    offer = build_offer("192.0.2.7", 5002, codecs=("PCMA", "PCMU"), dtmf_payload_type=121)
    audio = offer.audio
    assert audio is not None
    assert audio.formats == ["8", "0", "121"]
    assert offer.rtp_address == ("192.0.2.7", 5002)


INVITE = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport\r\n"
    "Route: <sip:proxy.example.com;lr>\r\n"
    "From: <sip:robot@example.com>;tag=111\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: c1@10.0.0.1\r\n"
    "CSeq: 7 INVITE\r\n"
    "Content-Length: 0\r\n\r\n"
)
BUSY = (
    "SIP/2.0 486 Busy Here\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport=5060\r\n"
    "From: <sip:robot@example.com>;tag=111\r\n"
    "To: <sip:bob@example.com>;tag=222\r\n"
    "Call-ID: c1@10.0.0.1\r\n"
    "CSeq: 7 INVITE\r\n"
    "Content-Length: 0\r\n\r\n"
)


def test_ack_for_a_non_2xx_answer_reuses_the_invite_branch_and_takes_the_to_tag() -> None:
    invite = SipMessage.parse(INVITE)
    response = SipMessage.parse(BUSY)
    assert isinstance(invite, SipRequest)
    assert isinstance(response, SipResponse)
    ack = build_non2xx_ack(invite, response)
    assert ack.method == "ACK"
    assert ack.uri == "sip:bob@example.com"
    assert ack.headers.get_first("via") == invite.headers.get_first("via")
    assert ack.headers.get_first("to") == "<sip:bob@example.com>;tag=222"
    assert ack.headers.get_first("cseq") == "7 ACK"
    assert ack.headers.get("route") == ["<sip:proxy.example.com;lr>"]
    assert txn_key(ack) == ("z9hG4bKabc", "ACK")
    assert txn_key(response) == ("z9hG4bKabc", "INVITE")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sip.example.com", ("sip.example.com", 5060)),
        ("10.0.0.1:5080", ("10.0.0.1", 5080)),
        ("sip:bob@10.0.0.2:5070;transport=udp", ("10.0.0.2", 5070)),
        ("[2001:db8::1]:5062", ("2001:db8::1", 5062)),
    ],
)
def test_host_and_port_of_a_proxy_setting(value, expected) -> None:
    assert split_hostport(value) == expected


def test_lateness_percentiles_come_from_the_histogram() -> None:
    stats = LatenessStats()
    for late_ms in [0.1] * 90 + [2.0] * 9 + [50.0]:
        stats.add(late_ms / 1000)
    assert stats.percentile(0.5) == pytest.approx(0.1)
    assert stats.percentile(0.99) == pytest.approx(2.0)
    assert stats.percentile(1.0) == pytest.approx(50.0)
    stats.add(1.0)  # a second late lands in the last bucket
    assert stats.percentile(1.0) == 100.0
