"""A trunk that must register, with its registrar down at first: the worker keeps trying with
backoff, says so on /healthz and in one warning naming trunk and registrar, holds calls while
unregistered (retried later, not the client's doing), and registers once the registrar is up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from tests.integration.deploy.test_trunk import _client_due_for_a_call
from tests.integration.deploy.worker import base_settings, running_worker
from tests.integration.sip.peers import free_port, start_sipp

pytestmark = [pytest.mark.sip]

COMPONENT = "trunk default registration"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_registrar_that_comes_back_gets_registered_and_calls_wait_for_it(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    client_id = await _client_due_for_a_call(store)
    registrar = free_port()
    settings = {
        **base_settings(tmp_path, db_url),
        "POVTOR_SIP_ENABLED": "true",
        "POVTOR_SIP_PROXY": f"127.0.0.1:{registrar}",
        "POVTOR_SIP_REGISTER_ENABLED": "true",
        "POVTOR_SIP_USER": "robot",
        "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
        "POVTOR_SIP_LOCAL_PORT": "0",
        "POVTOR_SIP_T1_S": "0.05",  # a REGISTER gives up after 64*T1 = 3.2 s
        "POVTOR_SIP_REGISTER_RETRY_MIN_S": "0.5",
        "POVTOR_SIP_REGISTER_RETRY_MAX_S": "1",
    }
    async with running_worker(tmp_path / "w", settings) as worker:
        down = await worker.wait_health(
            lambda h: h.get("components", {}).get(COMPONENT, {}).get("state") == "down"
        )
        # the client due now is not dialled through an unregistered trunk
        await worker.wait_log("not placed, retried later: trunk default is not registered")
        sipp = await start_sipp(tmp_path, "registrar", port=registrar)
        up = await worker.wait_health(
            lambda h: h.get("components", {}).get(COMPONENT, {}).get("state") == "ok"
        )
    assert await sipp.finish() == 0, sipp.log()  # registered, then unregistered at stop
    reason = down["components"][COMPONENT]["reason"]
    assert reason == (
        f"REGISTER to registrar 127.0.0.1:{registrar} failed: "
        f"no response from 127.0.0.1:{registrar}"
    )
    assert down["status"] == "degraded"
    assert up["status"] == "ok"
    warnings = [line for line in worker.lines if "WARNING" in line and COMPONENT in line]
    assert len(warnings) == 1, worker.log[-3000:]  # however many retries failed
    assert any(f"{COMPONENT} recovered" in line for line in worker.lines)
    assert len(sipp.received("REGISTER")) == 2
    async with engine.connect() as conn:
        outcome = (
            await conn.execute(
                text(
                    "SELECT o.kind, o.detail, a.state FROM outreach_outcomes o "
                    "JOIN outreach_attempts a ON a.id = o.attempt_id WHERE a.client_id = :c"
                ),
                {"c": client_id},
            )
        ).one()
        contacts = (
            await conn.execute(
                text("SELECT count(*) FROM outreach_contacts WHERE client_id = :c"),
                {"c": client_id},
            )
        ).scalar_one()
    assert outcome.kind == "failed"
    assert outcome.detail.startswith("trunk failure: trunk default is not registered")
    assert outcome.state == "retry_scheduled"
    assert contacts == 0
    assert sipp.received("INVITE") == []
