"""Where the trunk refuses REFER, the robot calls the manager itself on the same trunk and joins
the two calls: the client's and the manager's audio and keypad go across, both people are in the
call's recording, and when one side hangs up the other gets a BYE. Against SIPp clients that
refuse REFER (405, or 202 then a NOTIFY reporting 503), a baresip manager that answers (and
hears the client), a SIPp manager that answers, and one that is busy."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortp.codecs.g711 import PcmaCodec, PcmuCodec

from crm_sync.history.store import SqlHistoryStore
from povtor.domain import Client, OutcomeKind, Purpose
from tests.integration.scenario.baresip import phones
from tests.integration.scenario.test_call_channel_sip import attempt
from tests.integration.scenario.test_transfer_sip import call_once, new_client, settings_for
from tests.integration.sip.peers import (
    peak_frequency,
    read_wav,
    start_sipp,
    tone,
    wait_until,
    write_pcap,
    write_wav,
)
from voice.call_channel import build_call_channel
from voice.scenario import DEFAULT_TRANSFER_FAILED

pytestmark = pytest.mark.sip

CLIENT_HZ, MANAGER_HZ = 1000.0, 600.0


def rtp_pcap(
    path: Path, pcm: bytes, payload_type: int, *, digit: int | None = None, every_s: float = 1.0
) -> Path:
    """A pcap of ``pcm`` as G.711 RTP (PCMU 0 or PCMA 8) for SIPp's play_pcap_audio; with
    ``digit``, an RFC 4733 event (type 101) takes the place of the audio every ``every_s``."""
    codec = PcmuCodec() if payload_type == 0 else PcmaCodec()
    encoded = codec.encode(pcm)
    packets: list[tuple[float, bytes]] = []
    frames = len(encoded) // 160
    period = int(every_s / 0.02)
    i = 0
    while i < frames:
        if digit is not None and i and i % period == 0 and i + 8 <= frames:
            for k in range(8):  # 5 updates and 3 end packets, one timestamp
                end = k >= 5
                event = struct.pack("!BBH", digit, (0x80 if end else 0) | 10, 160 * min(k + 1, 5))
                marker = 0x80 if k == 0 else 0
                header = struct.pack("!BBHII", 0x80, marker | 101, i + k, i * 160, 7)
                packets.append(((i + k) * 0.02, header + event))
            i += 8
            continue
        header = struct.pack("!BBHII", 0x80, payload_type, i, i * 160, 7)
        packets.append((i * 0.02, header + encoded[i * 160 : (i + 1) * 160]))
        i += 1
    return write_pcap(path, packets)


def trunk_to(port: int) -> dict[str, Any]:
    """The trunk's fields for a client peer at ``port``: no proxy, so the manager's call goes
    to the manager's own address on the same trunk (a proxy would take both calls)."""
    return {"proxy": None, "domain": f"127.0.0.1:{port}"}


def channel_side(wav: Path, side: int) -> bytes:
    """One side of a stereo call recording (0: what the client heard, 1: the client)."""
    channels, pcm = read_wav(wav)
    assert channels == 2
    samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)[:, side]
    return samples.astype("<i2").tobytes()


def loudest_second(pcm: bytes) -> bytes:
    """The second of ``pcm`` with the most energy (where the tone is, not the silence)."""
    seconds = [pcm[i : i + 16000] for i in range(0, len(pcm) - 15999, 16000)]
    assert seconds, "recording shorter than a second"
    return max(seconds, key=lambda s: float(np.abs(np.frombuffer(s, dtype="<i2")).mean()))


async def test_a_refused_refer_joins_the_client_to_a_manager_who_answers_through_povtor(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    """REFER refused with 405: the robot calls the manager (baresip) and joins the calls. The
    manager hears the client's tone and gets the client's keypad digit; the client's side of
    the recording has the manager's tone; the manager hangs up and the client gets a BYE."""
    client = await new_client(store)
    pcap = rtp_pcap(tmp_path / "client.pcap", tone(CLIENT_HZ, 12.0), 8, digit=5)
    async with phones(tmp_path) as start:
        manager = await start("manager", source_pcm=tone(MANAGER_HZ, 60.0))
        sipp = await start_sipp(
            tmp_path, "refer_refused_then_talks",
            fill={"CODE": "405", "REASON": "Method Not Allowed", "PCAP": str(pcap)},
        )  # fmt: skip
        target = f"sip:manager@127.0.0.1:{manager.sip_port}"
        async with engine_for(sipp.port, record=True, **trunk_to(sipp.port)) as engine:
            settings = settings_for(tmp_path, in_scenario=True, target=target)
            channel = build_call_channel(settings, engine, worker_id="test-worker", history=store)
            execution = asyncio.ensure_future(channel.execute(attempt(Purpose.NPS), client))
            try:
                await manager.wait_event("CALL_ESTABLISHED")
                digit = await manager.wait_event("CALL_DTMF_START")  # the client's key, relayed
                await manager.command("hangup")
                async with asyncio.timeout(30):
                    outcome = await execution
            finally:
                execution.cancel()
                channel.close()
        assert await sipp.finish() == 0, sipp.log()  # the client got the robot's BYE
    assert digit.get("param") == "5", digit  # baresip names the key it got
    assert sipp.received("REFER"), sipp.log()
    data = outcome.data
    transfer = data["transfer"]
    assert transfer["stage"] == "connected", transfer
    assert transfer["route"] == "bridge"
    assert (transfer["refer_code"], transfer["target"]) == (405, target)
    assert transfer["ended_by"] == "manager"
    assert data["finished"] == "transferred"
    assert outcome.kind is OutcomeKind.ANSWERED
    assert "callback" not in data
    assert [p["step"] for p in data["prompts"]] == ["offer"]
    # the manager heard the client (PCMA from the client, PCMU to the manager)
    heard = manager.heard()
    assert abs(peak_frequency(loudest_second(read_wav(heard)[1])) - CLIENT_HZ) < 30
    # the call's recording: the manager on the side the client hears, the client on the other
    (wav,) = (tmp_path / "recordings").glob("*.wav")
    assert abs(peak_frequency(loudest_second(channel_side(wav, 0))) - MANAGER_HZ) < 30
    assert abs(peak_frequency(loudest_second(channel_side(wav, 1))) - CLIENT_HZ) < 30
    summaries = [e.summary for e in await store.timeline(client.id) if "Перевод" in e.summary]
    assert summaries == [
        "Перевод на менеджера: клиент соединён с менеджером; вторым звонком через Povtor, "
        "оператор связи отказал в REFER (SIP 405)"
    ]
    assert await store.list_client_tasks(client.id) == []


async def test_a_notify_saying_the_trunk_failed_joins_the_calls_until_the_client_hangs_up(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    """REFER accepted, then a NOTIFY reports 503 (the trunk could not place the call): the
    robot calls the manager (SIPp) itself; the client hangs up and the manager gets a BYE."""
    client = await new_client(store)
    manager = await start_sipp(
        tmp_path, "manager_answers",
        fill={"PCAP": str(rtp_pcap(tmp_path / "manager.pcap", tone(MANAGER_HZ, 3.0), 0))},
    )  # fmt: skip
    sipp = await start_sipp(
        tmp_path, "refer_notify_fails_then_hangs_up",
        fill={"CODE": "503", "REASON": "Service Unavailable", "PAUSE_MS": "3000",
              "PCAP": str(rtp_pcap(tmp_path / "client.pcap", tone(CLIENT_HZ, 2.0), 0))},
    )  # fmt: skip
    target = f"sip:manager@127.0.0.1:{manager.port}"
    settings = settings_for(tmp_path, in_scenario=True, target=target)
    outcome = await call_once(
        engine_for, sipp.port, settings, store, client, **trunk_to(sipp.port)
    )
    assert await sipp.finish() == 0, sipp.log()
    assert await manager.finish() == 0, manager.log()  # the manager got the robot's BYE
    invite = manager.received("INVITE")
    assert len(invite) == 1
    assert invite[0].startswith(f"INVITE {target} ")
    transfer = outcome.data["transfer"]
    assert (transfer["stage"], transfer["route"]) == ("connected", "bridge"), transfer
    assert (transfer["refer_code"], transfer["progress"]) == (503, [100, 503])
    assert transfer["ended_by"] == "client"
    assert outcome.data["hung_up_by"] == "client"
    assert outcome.data["finished"] == "transferred"


@pytest.mark.parametrize(("code", "reason"), [("403", "Forbidden"), ("501", "Not Implemented")])
async def test_a_refused_refer_and_a_busy_manager_is_said_and_leaves_a_callback_task(
    tmp_path: Path, engine_for, store: SqlHistoryStore, code: str, reason: str
) -> None:
    """REFER refused, and the manager's own call gets 486: the transfer failed with that reason,
    the robot says so, goes on with the scenario, and a manager is asked to call back."""
    client = await new_client(store)
    manager = await start_sipp(tmp_path, "manager_busy")
    sipp = await start_sipp(tmp_path, "refer_refused", fill={"CODE": code, "REASON": reason})
    target = f"sip:manager@127.0.0.1:{manager.port}"
    settings = settings_for(tmp_path, in_scenario=True, target=target)
    outcome = await call_once(
        engine_for, sipp.port, settings, store, client, **trunk_to(sipp.port)
    )
    assert await sipp.finish() == 0, sipp.log()
    assert await manager.finish() == 0, manager.log()
    data = outcome.data
    transfer = data["transfer"]
    assert (transfer["stage"], transfer["route"], transfer["code"]) == ("failed", "bridge", 486)
    assert transfer["refer_code"] == int(code)
    assert data["callback"] is True
    prompts = data["prompts"]
    assert [p["step"] for p in prompts] == ["offer", "transfer_failed", "bye"]
    assert prompts[1]["text"] == DEFAULT_TRANSFER_FAILED
    assert data["finished"] == "end"
    summaries = [e.summary for e in await store.timeline(client.id) if "Перевод" in e.summary]
    assert summaries == [
        "Перевод на менеджера: менеджер не ответил (SIP 486); вторым звонком через Povtor, "
        f"оператор связи отказал в REFER (SIP {code})"
    ]
    tasks = await store.list_client_tasks(client.id)
    assert [(t.kind, t.source_ref) for t in tasks] == [("callback", outcome.ref)]


async def test_a_trunk_set_to_bridge_joins_two_real_phones_without_refer(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    """``transfer_by: bridge``: no REFER; baresip the client and baresip the manager hear each
    other's tone and each other's keys; the client hangs up and the manager's call is ended."""
    client = await new_client(store)
    async with phones(tmp_path) as start:
        manager = await start("manager", source_pcm=tone(MANAGER_HZ, 60.0))
        phone = await start(client.phones[0], source_pcm=tone(CLIENT_HZ, 60.0))
        settings = quiet_robot(tmp_path, f"sip:manager@127.0.0.1:{manager.sip_port}")
        async with bridged_from(engine_for, settings, store, client, phone) as execution:
            await manager.wait_event("CALL_ESTABLISHED")
            got = await key_across(phone, manager, "7")
            back = await key_across(manager, phone, "3")
            # the manager's phone has written two seconds of what it heard
            await wait_until(lambda: heard_s(manager) >= 2.0, 20, "the manager to listen")
            await phone.command("hangup")
            await manager.wait_event("CALL_CLOSED")  # the robot's BYE to the manager
            async with asyncio.timeout(30):
                outcome = await execution
    assert (got, back) == ("7", "3")
    transfer = outcome.data["transfer"]
    assert (transfer["stage"], transfer["route"]) == ("connected", "bridge"), transfer
    assert "refer_code" not in transfer  # no REFER was tried
    assert transfer["ended_by"] == "client"
    assert outcome.data["hung_up_by"] == "client"
    manager_heard = loudest_second(read_wav(manager.heard())[1])
    client_heard = loudest_second(read_wav(phone.heard())[1])
    assert abs(peak_frequency(manager_heard) - CLIENT_HZ) < 30
    assert abs(peak_frequency(client_heard) - MANAGER_HZ) < 30


@asynccontextmanager
async def bridged_from(
    engine_for, settings: Any, store: SqlHistoryStore, client: Client, phone: Any
) -> AsyncIterator[asyncio.Future[Any]]:  # fmt: skip
    """Call the baresip ``phone`` on a trunk set to bridge; yields the running execution once
    the phone has answered."""
    trunk = {**trunk_to(phone.sip_port), "transfer_by": "bridge"}
    async with engine_for(phone.sip_port, **trunk) as engine:
        channel = build_call_channel(settings, engine, worker_id="test-worker", history=store)
        execution = asyncio.ensure_future(channel.execute(attempt(Purpose.NPS), client))
        try:
            await phone.wait_event("CALL_ESTABLISHED")
            yield execution
        finally:
            execution.cancel()
            channel.close()


def quiet_robot(tmp_path: Path, target: str) -> Any:
    """Settings whose transfer step plays a quiet recording instead of speech: all a phone
    hears loud is the other side (or the ringback)."""
    settings = settings_for(tmp_path, in_scenario=True, target=target)
    write_wav(tmp_path / "scenarios" / "quiet.wav", bytes(8000))
    yaml = tmp_path / "scenarios" / "nps.yaml"
    quiet = yaml.read_text().replace("transfer: true", "transfer: true\n    audio: quiet.wav")
    yaml.write_text(quiet)
    return settings


def tones(pcm: bytes) -> set[int]:
    """The steady tones in ``pcm``: peak frequencies (to 25 Hz) of its loud quarter-seconds."""
    found = set()
    for i in range(0, len(pcm) - 3999, 4000):
        window = pcm[i : i + 4000]
        if np.abs(np.frombuffer(window, dtype="<i2")).mean() > 1000:
            found.add(int(round(peak_frequency(window) / 25) * 25))
    return found


async def test_the_client_hears_ringback_while_the_managers_phone_rings(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    """The manager's phone (SIPp) rings for two and a half seconds: the client (baresip) hears
    the 425 Hz ringback, then the manager."""
    client = await new_client(store)
    manager = await start_sipp(
        tmp_path, "manager_rings_then_answers",
        fill={"RING_MS": "2500",
              "PCAP": str(rtp_pcap(tmp_path / "manager.pcap", tone(MANAGER_HZ, 4.0), 0))},
    )  # fmt: skip
    async with phones(tmp_path) as start:
        phone = await start(client.phones[0])
        settings = quiet_robot(tmp_path, f"sip:manager@127.0.0.1:{manager.port}")
        async with bridged_from(engine_for, settings, store, client, phone) as execution:
            # the quiet words, the ringing, then the manager's tone: five seconds heard
            await wait_until(lambda: heard_s(phone) >= 5.0, 30, "the client to listen")
            await phone.command("hangup")
            async with asyncio.timeout(30):
                outcome = await execution
        assert await manager.finish() == 0, manager.log()  # the robot's BYE
        recording = phone.heard()
    # read once the phone has stopped: baresip completes the WAV's header when it closes it
    heard = tones(read_wav(recording)[1])
    assert {425, int(MANAGER_HZ)} <= heard, heard
    assert outcome.data["transfer"]["stage"] == "connected"


def heard_s(phone: Any) -> float:
    """Seconds of audio the phone has written of what it heard so far (16-bit, 8 kHz)."""
    files = list(phone.snd_dir.glob("*-dec.wav"))
    return max(0, files[0].stat().st_size - 44) / 16000 if files else 0.0


async def key_across(sender: Any, receiver: Any, key: str) -> str:
    """Press ``key`` on one phone until the other reports it (keys pressed before the two
    calls are joined go to the robot, which is transferring and ignores them)."""
    for _ in range(10):
        await sender.command("sndcode", key)
        try:
            event = await receiver.wait_event("CALL_DTMF_START", deadline_s=2.0)
        except TimeoutError:
            continue
        return str(event.get("param"))
    raise AssertionError(f"key {key} never reached the other phone")
