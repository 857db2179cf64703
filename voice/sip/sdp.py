"""SDP for our calls: the offer we send and what we take from the answer (pure functions)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiosipua.sdp import (
    ConnectionData,
    MediaDescription,
    Origin,
    SdpMessage,
    TimingField,
)

from voice.sip.aiosipua_shim import codecs_of

# G.711 only: static payload types, 8 kHz, 20 ms frames of 160 bytes
G711 = {0: "PCMU", 8: "PCMA"}
CODEC_PT = {name: pt for pt, name in G711.items()}


class SdpMismatch(ValueError):
    """The answer has no codec or address we can use."""


@dataclass(frozen=True, slots=True)
class MediaParams:
    """What both sides agreed on for the audio stream."""

    remote: tuple[str, int]
    payload_type: int
    codec: str  # "PCMU" or "PCMA"
    dtmf_payload_types: frozenset[int]  # the telephone-event types we accept
    direction: str = "sendrecv"
    dtmf_send_type: int | None = None  # the telephone-event type the answer named: ours to send


def build_offer(
    host: str,
    rtp_port: int,
    *,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    dtmf_payload_type: int = 101,
    session_version: int | None = None,
) -> SdpMessage:
    """An audio offer listing G.711 codecs in preference order and telephone-event."""
    formats = [str(CODEC_PT[c]) for c in codecs]
    rtpmap = [f"{CODEC_PT[c]} {c}/8000" for c in codecs]
    attrs: dict[str, list[str]] = {"rtpmap": rtpmap}
    if dtmf_payload_type > 0:
        formats.append(str(dtmf_payload_type))
        rtpmap.append(f"{dtmf_payload_type} telephone-event/8000")
        attrs["fmtp"] = [f"{dtmf_payload_type} 0-15"]
    attrs["ptime"] = ["20"]
    attrs["sendrecv"] = []
    media = MediaDescription(
        media="audio", port=rtp_port, proto="RTP/AVP", formats=formats, attributes=attrs
    )
    media.codecs = codecs_of(media)
    version = str(session_version if session_version is not None else int(time.time()))
    kind = "IP6" if ":" in host else "IP4"
    return SdpMessage(
        origin=Origin("povtor", version, version, "IN", kind, host),
        session_name="povtor",
        connection=ConnectionData("IN", kind, host),
        timing=TimingField(0, 0),
        media=[media],
    )


def telephone_event_types(sdp: SdpMessage) -> set[int]:
    audio = sdp.audio
    if audio is None:
        return set()
    return {c.payload_type for c in audio.codecs if c.encoding_name.lower() == "telephone-event"}


def accept_answer(offer: SdpMessage, answer: SdpMessage) -> MediaParams:
    """Media parameters from an answer to our offer; raises SdpMismatch when unusable."""
    audio = answer.audio
    address = answer.rtp_address
    if audio is None or address is None or audio.port == 0:
        raise SdpMismatch("the answer has no active audio stream")
    offered = {int(f) for f in offer.audio.formats} if offer.audio else set(G711)
    chosen = None
    for fmt in audio.formats:
        if fmt.isdigit() and int(fmt) in G711 and int(fmt) in offered:
            chosen = int(fmt)
            break
    if chosen is None:
        raise SdpMismatch(f"no common G.711 codec in {audio.formats}")
    # Accept the type we offered and the one the answer names (RFC 3264 allows either)
    answered_dtmf = telephone_event_types(answer)
    dtmf = telephone_event_types(offer) | answered_dtmf
    return MediaParams(
        remote=address,
        payload_type=chosen,
        codec=G711[chosen],
        dtmf_payload_types=frozenset(dtmf),
        direction=audio.direction,
        dtmf_send_type=min(answered_dtmf) if answered_dtmf else None,
    )
