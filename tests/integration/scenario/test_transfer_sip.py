"""A scenario step hands the client to a manager by SIP REFER, against SIPp peers that accept
the REFER and report the new call answered, or accept it and then report the manager busy (no
second call then: test_transfer_bridge has the peers that refuse REFER). The outcome, the
client's timeline and (when it failed) a call-back task record it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from crm_sync.history.store import ClientInput, SqlHistoryStore
from povtor.domain import Client, EventKind, OutcomeKind, Purpose
from povtor.settings import CallSettings, Settings
from tests.integration.scenario.test_call_channel_sip import attempt
from tests.integration.sip.peers import start_sipp
from voice.call_channel import build_call_channel
from voice.scenario import DEFAULT_TRANSFER_FAILED

pytestmark = pytest.mark.sip

MANAGER = "sip:manager@127.0.0.1:5999"
SCENARIO = """\
purpose: nps
start: offer
disclosure: ""
{transfer_to}
steps:
  offer:
    say: "Соединяю вас с менеджером."
    transfer: true
    next: bye
  bye: {{say: "До свидания.", next: end}}
"""


def settings_for(tmp_path: Path, *, in_scenario: bool, target: str = MANAGER) -> Settings:
    """The manager's number from the scenario's own option, or else from the setting."""
    own = tmp_path / "scenarios"
    own.mkdir()
    line = f'transfer_to: "{target}"' if in_scenario else ""
    (own / "nps.yaml").write_text(SCENARIO.format(transfer_to=line), encoding="utf-8")
    return Settings(
        data_dir=tmp_path / "data",
        call=CallSettings(
            scenarios_dir=own,
            live_asr=False,
            detect_machines=False,
            tts_engine="espeak",
            transfer_to=None if in_scenario else target,
            transfer_wait_s=10.0,
        ),
    )


async def transfer_call(
    tmp_path: Path, engine_for, store: SqlHistoryStore, scenario: str, *, in_scenario: bool,
    fill: dict[str, str] | None = None,
) -> tuple[object, list[str], Client]:  # fmt: skip
    client = await new_client(store)
    sipp = await start_sipp(tmp_path, scenario, fill=fill)
    settings = settings_for(tmp_path, in_scenario=in_scenario)
    outcome = await call_once(engine_for, sipp.port, settings, store, client)
    assert await sipp.finish() == 0, sipp.log()
    return outcome, sipp.received("REFER"), client


async def new_client(store: SqlHistoryStore) -> Client:
    return await store.create_client(
        ClientInput(external_id="c1", name="Иван", phones=("+79990001122",))
    )


async def call_once(
    engine_for, port: int, settings: Settings, store: SqlHistoryStore, client: Client,
    purpose: Purpose = Purpose.NPS, **trunk: Any,
) -> Any:  # fmt: skip
    """One execution of the call channel against the peer at ``port`` (``trunk``: its fields)."""
    async with engine_for(port, **trunk) as engine:
        channel = build_call_channel(settings, engine, worker_id="test-worker", history=store)
        try:
            async with asyncio.timeout(60):
                return await channel.execute(attempt(purpose), client)
        finally:
            channel.close()


async def test_an_accepted_transfer_connects_and_the_robot_leaves_the_call(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    outcome, refers, client = await transfer_call(
        tmp_path, engine_for, store, "refer_accepted", in_scenario=True
    )
    assert len(refers) == 1
    assert f"Refer-To: <{MANAGER}>" in refers[0]
    assert outcome.kind is OutcomeKind.ANSWERED, outcome  # type: ignore[attr-defined]
    data = outcome.data  # type: ignore[attr-defined]
    assert data["finished"] == "transferred"
    transfer = data["transfer"]
    assert transfer["stage"] == "connected"
    assert transfer["code"] == 200
    assert transfer["progress"] == [180, 200]
    assert transfer["target"] == MANAGER
    assert "callback" not in data
    assert [p["step"] for p in data["prompts"]] == ["offer"]  # no "bye": the manager has it
    assert data["hung_up_by"] == "robot"
    events = await store.timeline(client.id)
    transfers = [e for e in events if e.kind is EventKind.CALL and "Перевод" in e.summary]
    assert [e.summary for e in transfers] == ["Перевод на менеджера: клиент соединён с менеджером"]
    assert await store.list_client_tasks(client.id) == []


async def test_a_transfer_the_notify_reports_failed_is_not_taken_for_connected(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    outcome, refers, client = await transfer_call(
        tmp_path, engine_for, store, "refer_notify_fails", in_scenario=False,
        fill={"CODE": "486", "REASON": "Busy Here"},
    )  # fmt: skip
    assert f"Refer-To: <{MANAGER}>" in refers[0]  # the setting's number
    data = outcome.data  # type: ignore[attr-defined]
    assert data["transfer"]["stage"] == "failed"
    assert data["transfer"]["code"] == 486
    assert data["transfer"]["progress"] == [100, 486]
    assert data["transfer"]["route"] == "refer"  # the manager's own answer: no second call
    assert [p["step"] for p in data["prompts"]] == ["offer", "transfer_failed", "bye"]
    assert data["prompts"][1]["text"] == DEFAULT_TRANSFER_FAILED
    tasks = await store.list_client_tasks(client.id)
    assert [(t.kind, t.source_ref) for t in tasks] == [("callback", outcome.ref)]  # type: ignore[attr-defined]
    events = await store.timeline(client.id)
    assert [e.summary for e in events if "Перевод" in e.summary] == [
        "Перевод на менеджера: менеджер не ответил (SIP 486)"
    ]


async def test_a_real_phone_takes_the_refer_and_calls_the_manager(
    tmp_path: Path, engine_for, store: SqlHistoryStore
) -> None:
    """baresip as the client follows the REFER: it calls a second baresip (the manager), which
    answers, and reports it by NOTIFY; the robot leaves the call."""
    from tests.integration.scenario.baresip import phones

    client = await store.create_client(
        ClientInput(external_id="c1", name="Иван", phones=("+79990001122",))
    )
    async with phones(tmp_path) as start:
        manager = await start("manager")
        phone = await start(client.phones[0])
        target = f"sip:manager@127.0.0.1:{manager.sip_port}"
        own = tmp_path / "scenarios"
        own.mkdir()
        (own / "nps.yaml").write_text(
            SCENARIO.format(transfer_to=f'transfer_to: "{target}"'), encoding="utf-8"
        )
        settings = Settings(
            data_dir=tmp_path / "data",
            call=CallSettings(scenarios_dir=own, live_asr=False, detect_machines=False,
                              tts_engine="espeak", transfer_wait_s=15.0),
        )  # fmt: skip
        async with engine_for(phone.sip_port) as engine:
            channel = build_call_channel(settings, engine, worker_id="test-worker", history=store)
            try:
                async with asyncio.timeout(60):
                    outcome = await channel.execute(attempt(Purpose.NPS), client)
            finally:
                channel.close()
        await manager.wait_event("CALL_ESTABLISHED")  # the manager's phone rang and answered
    data = outcome.data
    assert data["transfer"]["stage"] == "connected", data["transfer"]
    assert data["transfer"]["progress"][-1] == 200
    assert data["finished"] == "transferred"
    assert outcome.kind is OutcomeKind.ANSWERED
