"""SIP signalling against SIPp scenarios: auth, final answers, CANCEL, loss, odd responses."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from pathlib import Path

import pytest

from povtor.domain import OutcomeKind
from tests.integration.sip.peers import LossyRelay, start_sipp, tone, wait_until

pytestmark = pytest.mark.sip

ALICE = {"user": "alice", "password": "s3cret"}


async def test_401_challenge_is_acked_and_answered_with_md5_digest(tmp_path: Path, engine_for):
    sipp = await start_sipp(tmp_path, "auth_401_md5")
    async with engine_for(sipp.port, **ALICE) as engine:
        call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}")
        assert await call.wait_answered()
        result = await call.hangup()
    assert await sipp.finish() == 0, sipp.log()
    assert result.outcome is OutcomeKind.ANSWERED
    assert result.sip_code == 200
    assert len(sipp.received("ACK")) == 2  # one for the 401, one for the 200


async def test_407_challenge_is_acked_and_answered_with_sha256_digest(tmp_path: Path, engine_for):
    sipp = await start_sipp(tmp_path, "auth_407_sha256")
    async with engine_for(sipp.port, **ALICE) as engine:
        call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}")
        assert await call.wait_answered()
        await call.hangup()
    assert await sipp.finish() == 0, sipp.log()
    invites = sipp.received("INVITE")
    assert len(invites) == 2
    header = next(line for line in invites[1].splitlines() if line.startswith("Proxy-Auth"))
    params = dict(re.findall(r'(\w+)="?([^",]+)"?', header.split(" ", 2)[2]))
    assert params["algorithm"] == "SHA-256"
    assert params["qop"] == "auth"
    assert params["opaque"] == "op42"

    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha1 = h(f"alice:{params['realm']}:s3cret")
    ha2 = h(f"INVITE:{params['uri']}")
    expected = h(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
    assert params["response"] == expected


@pytest.mark.parametrize(
    ("code", "reason", "outcome"),
    [
        (486, "Busy Here", OutcomeKind.BUSY),
        (600, "Busy Everywhere", OutcomeKind.BUSY),
        (480, "Temporarily Unavailable", OutcomeKind.NO_ANSWER),
        (603, "Decline", OutcomeKind.REJECTED),
        (503, "Service Unavailable", OutcomeKind.FAILED),
    ],
)
async def test_final_answer_is_acked_and_mapped_to_an_outcome(
    tmp_path: Path, engine_for, code: int, reason: str, outcome: OutcomeKind
):
    sipp = await start_sipp(tmp_path, "final_answer", fill={"CODE": str(code), "REASON": reason})
    async with engine_for(sipp.port) as engine:
        call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}")
        assert not await call.wait_answered()
        result = await call.wait_ended()
    assert await sipp.finish() == 0, sipp.log()  # the scenario ends only with the ACK
    assert result.outcome is outcome
    assert result.sip_code == code
    assert result.duration_s == 0
    assert result.hung_up_by is None


async def test_ring_timeout_cancels_and_acks_the_487(tmp_path: Path, engine_for):
    sipp = await start_sipp(tmp_path, "ring_no_answer")
    async with engine_for(sipp.port) as engine:
        call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}", ring_timeout=0.5)
        assert not await call.wait_answered()
        result = await call.wait_ended()
    assert await sipp.finish() == 0, sipp.log()
    assert result.outcome is OutcomeKind.NO_ANSWER
    assert result.sip_code == 487
    assert result.ring_s is not None
    assert len(sipp.received("CANCEL")) == 1


async def test_lost_invite_is_retransmitted(tmp_path: Path, engine_for):
    sipp = await start_sipp(tmp_path, None, builtin="uas")
    loop = asyncio.get_running_loop()
    relay = LossyRelay(("127.0.0.1", sipp.port))
    transport, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
    relay_port = transport.get_extra_info("sockname")[1]
    try:
        async with engine_for(relay_port, t1_s=0.2) as engine:
            call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}")
            assert await call.wait_answered()
            result = await call.hangup()
    finally:
        transport.close()
    assert await sipp.finish() == 0, sipp.log()
    assert relay.dropped == 1
    assert relay.invites >= 2
    assert result.outcome is OutcomeKind.ANSWERED


async def test_silent_trunk_gets_invite_retransmissions_then_timer_b_fails_the_call(engine_for):
    got: list[float] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if data.startswith(b"INVITE "):
                got.append(asyncio.get_running_loop().time())

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        async with engine_for(port, t1_s=0.05) as engine:  # timer B = 3.2 s
            call = await engine.start_call(f"sip:bob@127.0.0.1:{port}", ring_timeout=30)
            async with asyncio.timeout(10):
                result = await call.wait_ended()
    finally:
        transport.close()
    assert result.outcome is OutcomeKind.FAILED
    assert result.sip_code is None
    assert 6 <= len(got) <= 8  # 0, .05, .15, .35, .75, 1.55, 3.15 s
    gaps = [b - a for a, b in itertools.pairwise(got)]
    assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(gaps))


async def test_calls_to_a_silent_trunk_leave_nothing_behind(engine_for):
    """Calls nobody answers at all, abandoned at the ring timeout or failed by timer B: once
    late answers can no longer come, the agent keeps no trace of them (nor does its UAC)."""

    class Sink(asyncio.DatagramProtocol):
        pass

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        async with engine_for(port, t1_s=0.05) as engine:  # timer B = 3.2 s
            calls = [
                await engine.start_call(f"sip:bob{n}@127.0.0.1:{port}", ring_timeout=timeout)
                for n, timeout in enumerate([0.2, 30] * 10)
            ]
            async with asyncio.timeout(15):
                results = [await call.wait_ended() for call in calls]
            agent = engine.agent()
            await wait_until(
                lambda: not agent._legs and not agent.uac._calls, 15, "the calls forgotten"
            )
    finally:
        transport.close()
    assert {r.outcome for r in results} == {OutcomeKind.FAILED}  # "no response from" the trunk


async def test_malformed_and_out_of_order_responses_still_give_an_answered_call(
    tmp_path: Path, engine_for
):
    sipp = await start_sipp(tmp_path, "malformed")
    async with engine_for(sipp.port) as engine:
        call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}")
        assert await call.wait_answered()
        assert await call.play(tone(300, 0.2))
        result = await call.hangup()
    assert await sipp.finish() == 0, sipp.log()
    assert result.outcome is OutcomeKind.ANSWERED
    assert result.sip_code == 200


async def test_client_bye_in_the_middle_of_a_prompt_is_hung_up_early(tmp_path: Path, engine_for):
    sipp = await start_sipp(tmp_path, "bye_mid_prompt")
    async with engine_for(sipp.port, early_hangup_s=0) as engine:
        call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}")
        assert await call.wait_answered()
        played_to_the_end = await call.play(tone(500, 5.0))
        result = await call.wait_ended()
    assert await sipp.finish() == 0, sipp.log()
    assert not played_to_the_end
    assert result.outcome is OutcomeKind.HUNG_UP_EARLY
    assert result.hung_up_by == "client"
    assert result.duration_s < 3


async def test_options_and_reinvite_are_answered_and_the_call_goes_on(tmp_path: Path, engine_for):
    sipp = await start_sipp(tmp_path, "refresh")
    async with engine_for(sipp.port, early_hangup_s=0) as engine:
        call = await engine.start_call(f"sip:bob@127.0.0.1:{sipp.port}")
        assert await call.wait_answered()
        result = await call.wait_ended()
    assert await sipp.finish() == 0, sipp.log()  # re-INVITE answered with SDP, ACKed
    assert result.outcome is OutcomeKind.ANSWERED
    assert result.hung_up_by == "client"


async def test_register_answers_the_challenge_refreshes_and_unregisters(
    tmp_path: Path, engine_for
):
    from aiosipua.registration import RegistrationState

    sipp = await start_sipp(tmp_path, "register")
    async with engine_for(sipp.port, register_enabled=True, **ALICE) as engine:
        agent = engine.agent()
        await wait_until(
            lambda: (
                agent.registration is not None
                and agent.registration.state == RegistrationState.REGISTERED
                and agent.registration.granted_expires == 60
            ),
            10,
            "the refreshed registration",
        )
    assert await sipp.finish() == 0, sipp.log()
    assert len(sipp.received("REGISTER")) == 4


async def test_a_trunk_that_rings_and_never_answers_the_cancel_leaves_nothing_behind(engine_for):
    """The trunk answers 180 Ringing, then ignores our CANCEL at the ring timeout and never
    sends a final answer: the call ends, and 64*T1 after the CANCEL the INVITE's transaction
    is gone too (RFC 3261 9.1), so the agent keeps no trace of the call."""

    class Ringing(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]
            self.cancels = 0

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            text = data.decode()
            if text.startswith("CANCEL "):
                self.cancels += 1
                return  # never answered
            if not text.startswith("INVITE "):
                return
            head = text.split("\r\n\r\n", 1)[0].split("\r\n")
            keep = [
                h
                for h in head[1:]
                if h.split(":", 1)[0].lower() in {"via", "from", "call-id", "cseq"}
            ]
            to = next(h for h in head[1:] if h.lower().startswith("to:"))
            reply = ["SIP/2.0 180 Ringing", *keep, f"{to};tag=ringer", "Content-Length: 0"]
            self.transport.sendto(("\r\n".join(reply) + "\r\n\r\n").encode(), addr)

    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(Ringing, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        async with engine_for(port, t1_s=0.05) as engine:  # 64*T1 = 3.2 s
            call = await engine.start_call(f"sip:bob@127.0.0.1:{port}", ring_timeout=0.5)
            async with asyncio.timeout(15):
                result = await call.wait_ended()
            agent = engine.agent()
            await wait_until(
                lambda: not agent.transport.pending and not agent._legs and not agent.uac._calls,
                15,
                "the cancelled call forgotten",
            )
    finally:
        transport.close()
    assert peer.cancels >= 1
    assert result.outcome is not OutcomeKind.ANSWERED
