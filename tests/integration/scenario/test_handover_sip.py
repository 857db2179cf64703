"""A client who presses the scenario's handover key at a question is handed to a manager: by
REFER (SIPp accepting it; baresip following it to a second baresip), or, with no number to
transfer to, told that a manager will call back, with a call-back task. (Spoken requests are
table-tested in tests/unit/nlu and tests/unit/scenario: the speech model here is not Russian.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from crm_sync.history.store import SqlHistoryStore
from povtor.domain import Client, OutcomeKind, Purpose
from povtor.settings import CallSettings, Settings
from tests.integration.scenario.baresip import phones
from tests.integration.scenario.test_call_channel_sip import attempt
from tests.integration.scenario.test_transfer_sip import call_once, new_client
from tests.integration.sip.peers import SIPP_SHARE, start_sipp
from voice.call_channel import build_call_channel
from voice.scenario import DEFAULT_CALLBACK_SAY, DEFAULT_HANDOVER_SAY

pytestmark = pytest.mark.sip

MANAGER = "sip:manager@127.0.0.1:5999"
KEY_ZERO = str(SIPP_SHARE / "dtmf_2833_0.pcap")  # the shipped reorder scenario's handover key


def settings_for(tmp_path: Path, transfer_to: str | None) -> Settings:
    """The shipped scenarios (reorder has `handover: {key: "0"}`)."""
    return Settings(
        data_dir=tmp_path / "data",
        call=CallSettings(
            live_asr=False,
            detect_machines=False,
            tts_engine="espeak",
            transfer_to=transfer_to,
            transfer_wait_s=10.0,
        ),
    )


async def reorder_call(
    tmp_path: Path, engine_for, store: SqlHistoryStore, client: Client, port: int,
    transfer_to: str | None,
) -> Any:  # fmt: skip
    settings = settings_for(tmp_path, transfer_to)
    return await call_once(engine_for, port, settings, store, client, Purpose.REORDER)


async def test_the_handover_key_hands_the_client_to_a_manager_by_refer(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    client = await new_client(store)
    sipp = await start_sipp(tmp_path, "keypad_then_refer_accepted", fill={"PCAP": KEY_ZERO})
    outcome = await reorder_call(tmp_path, engine_for, store, client, sipp.port, MANAGER)
    assert await sipp.finish() == 0, sipp.log()
    (refer,) = sipp.received("REFER")
    assert f"Refer-To: <{MANAGER}>" in refer
    data = outcome.data  # type: ignore[attr-defined]
    assert [p["step"] for p in data["prompts"]] == ["disclosure", "remind", "handover"]
    assert data["prompts"][-1]["text"] == DEFAULT_HANDOVER_SAY
    assert data["finished"] == "transferred"
    transfer = data["transfer"]
    assert (transfer["stage"], transfer["route"], transfer["by"]) == (
        "connected", "refer", "keypad",
    )  # fmt: skip
    assert transfer["step"] == "remind"
    assert data["answers"][0]["label"] == "person"
    assert outcome.kind is OutcomeKind.ANSWERED  # type: ignore[attr-defined]
    summaries = [e.summary for e in await store.timeline(client.id) if "Перевод" in e.summary]
    assert summaries == [
        "Перевод на менеджера: клиент попросил менеджера; клиент соединён с менеджером"
    ]
    assert await store.list_client_tasks(client.id) == []


async def test_the_handover_key_without_a_number_promises_a_call_back_and_leaves_a_task(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    client = await new_client(store)
    sipp = await start_sipp(tmp_path, "keypad_then_bye", fill={"PCAP": KEY_ZERO})
    outcome = await reorder_call(tmp_path, engine_for, store, client, sipp.port, None)
    assert await sipp.finish() == 0, sipp.log()
    assert sipp.received("REFER") == []
    data = outcome.data  # type: ignore[attr-defined]
    assert [p["step"] for p in data["prompts"]] == ["disclosure", "remind", "handover_callback"]
    assert data["prompts"][-1]["text"] == DEFAULT_CALLBACK_SAY
    assert data["prompts"][-1]["completed"] is True
    assert data["finished"] == "callback"
    assert data["transfer"]["stage"] == "no_target"
    assert outcome.kind is OutcomeKind.ANSWERED  # type: ignore[attr-defined]
    summaries = [e.summary for e in await store.timeline(client.id) if "Перевод" in e.summary]
    assert summaries == [
        "Перевод на менеджера: клиент попросил менеджера; "
        "номер для перевода не задан, менеджер перезвонит"
    ]
    tasks = await store.list_client_tasks(client.id)
    assert [(t.kind, t.title) for t in tasks] == [
        ("callback", "Перезвонить клиенту: просил менеджера")
    ]


async def test_a_real_phone_presses_the_key_and_is_taken_to_the_manager(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    """baresip as the client presses 0 at the question, gets the REFER and calls a second
    baresip (the manager), which answers."""
    client = await new_client(store)
    async with phones(tmp_path) as start:
        manager = await start("manager")
        phone = await start(client.phones[0])
        target = f"sip:manager@127.0.0.1:{manager.sip_port}"
        settings = settings_for(tmp_path, target)
        async with engine_for(phone.sip_port) as engine:
            channel = build_call_channel(settings, engine, worker_id="test-worker", history=store)
            try:
                running = asyncio.ensure_future(channel.execute(attempt(Purpose.REORDER), client))
                await phone.wait_event("CALL_ESTABLISHED")
                await phone.command("sndcode", "0")
                async with asyncio.timeout(60):
                    outcome = await running
            finally:
                running.cancel()
                channel.close()
        await manager.wait_event("CALL_ESTABLISHED")  # the manager's phone rang and answered
    data = outcome.data
    assert data["transfer"]["stage"] == "connected", data["transfer"]
    assert (data["transfer"]["by"], data["transfer"]["route"]) == ("keypad", "refer")
    assert data["finished"] == "transferred"
