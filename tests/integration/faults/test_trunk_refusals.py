"""A SIP trunk that answers 503 to every INVITE for a stretch, then recovers (SIPp as the
trunk). Each refused call is our failure, not the client's: retried later, none of the
client's tries spent, the trunk shown down on the health board until it answers again; each
execution still has its own call key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from outreach.dispatcher import Dispatcher
from outreach.queue import AttemptQueue
from outreach.rules import Caps, ContactRules, RetryRule
from povtor.domain import OutcomeKind
from povtor.health import HealthBoard, HealthState
from povtor.settings import CallSettings, Settings
from tests.integration.outreach.conftest import Clock, attempt, new_client
from tests.integration.sip.conftest import trunk_for
from tests.integration.sip.peers import start_sipp
from voice.call_channel import build_call_channel
from voice.engine import CallEngine

pytestmark = pytest.mark.sip

REFUSALS = 3  # INVITEs the trunk refuses before it recovers
BUSY_TRIES = 2  # the client's own budget for a busy line


def _rules() -> ContactRules:
    return ContactRules(
        call_caps=Caps(10, 20, 40),
        retries={
            OutcomeKind.BUSY: RetryRule(timedelta(minutes=30), BUSY_TRIES),
            OutcomeKind.FAILED: RetryRule(timedelta(minutes=15), 3),
        },
    )


async def _rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql)))


async def test_a_trunk_refusing_every_invite_spends_none_of_the_clients_tries(
    tmp_path: Path,
    engine: AsyncEngine,
    store: SqlHistoryStore,
    queue: AttemptQueue,
    make_dispatcher: Callable[..., Dispatcher],
    clock: Clock,
) -> None:
    cid = await new_client(store, "C1")
    await queue.add([attempt(cid, "reorder:1")], clock())
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        call=CallSettings(live_asr=False, tts_engine="espeak"),
    )
    board = HealthBoard()
    refusing = await start_sipp(
        tmp_path,
        "final_answer",
        fill={"CODE": "503", "REASON": "Service Unavailable"},
        calls=REFUSALS,
    )
    trunk = trunk_for(refusing.port)
    async with CallEngine({trunk.name: trunk}, health=board) as calls:
        channel = build_call_channel(settings, calls, worker_id="w1")
        dispatcher = make_dispatcher(channel, rules=_rules())
        try:
            for n in range(REFUSALS):
                await dispatcher.run_until_idle()
                [row] = await _rows(
                    engine, "SELECT state, attempt_no, our_failures FROM outreach_attempts"
                )
                assert (row.state, row.attempt_no, row.our_failures) == (
                    "retry_scheduled",
                    n + 2,
                    n + 1,
                )
                trouble = board.components["trunk test"]
                assert trouble.state is HealthState.DOWN
                assert trouble.reason == "503 Service Unavailable (trunk test)"
                clock.advance(timedelta(minutes=16))
            assert await refusing.finish() == 0, refusing.log()
            invites = refusing.received("INVITE")  # its log is reused by the next SIPp

            # the trunk is back, and now the client's line is busy: the client gets both tries
            busy = await start_sipp(
                tmp_path,
                "final_answer",
                fill={"CODE": "486", "REASON": "Busy Here"},
                calls=BUSY_TRIES,
                port=refusing.port,
            )
            await dispatcher.run_until_idle()
            assert board.components["trunk test"].state is HealthState.OK
            [row] = await _rows(engine, "SELECT state, attempt_no FROM outreach_attempts")
            assert row.state == "retry_scheduled"  # busy once: one of two tries used
            clock.advance(timedelta(minutes=31))
            await dispatcher.run_until_idle()
            assert await busy.finish() == 0, busy.log()
        finally:
            channel.close()

    [row] = await _rows(
        engine, "SELECT state, attempt_no, our_failures, last_detail FROM outreach_attempts"
    )
    assert (row.state, row.attempt_no, row.our_failures) == ("given_up", REFUSALS + 2, REFUSALS)
    assert "busy" in row.last_detail
    outcomes = await _rows(
        engine, "SELECT attempt_no, kind, detail FROM outreach_outcomes ORDER BY attempt_no"
    )
    assert [(o.attempt_no, o.kind) for o in outcomes] == [
        *((n + 1, "failed") for n in range(REFUSALS)),
        (REFUSALS + 1, "busy"),
        (REFUSALS + 2, "busy"),
    ]
    assert all(o.detail.startswith("trunk failure: 503") for o in outcomes[:REFUSALS])
    # only the client's own tries are contacts (what the caps count)
    contacts = await _rows(engine, "SELECT attempt_no FROM outreach_contacts ORDER BY attempt_no")
    assert [c.attempt_no for c in contacts] == [REFUSALS + 1, REFUSALS + 2]
    # every execution dialled with its own call id: the trunk saw five distinct calls
    invites += busy.received("INVITE")
    call_ids = {
        line.split(":", 1)[1].strip()
        for message in invites
        for line in message.splitlines()
        if line.lower().startswith("call-id:")
    }
    assert len(invites) == len(call_ids) == REFUSALS + BUSY_TRIES
