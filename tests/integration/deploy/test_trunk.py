"""A SIP trunk as a deployment meets it: configured only by .env, the far end on loopback
(SIPp, or a port nothing listens on). The worker stays up, the reason is on /healthz and in
one log line, and nothing the trunk did is recorded as the client's doing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from dashboard.roles import Role
from dashboard.users import UserStore
from povtor.db import session_factory
from povtor.settings import Settings
from tests.integration.dashboard.conftest import Dashboard, dashboard_settings
from tests.integration.deploy.worker import (
    base_settings,
    closed_udp_port,
    free_tcp_port,
    povtor,
    running_worker,
    write_env,
    zone_in_daytime,
)
from tests.integration.sip.peers import free_port, start_sipp

pytestmark = [pytest.mark.sip]


async def _client_due_for_a_call(store: SqlHistoryStore) -> int:
    now = datetime.now(UTC)
    client = await store.create_client(
        ClientInput(
            external_id="T-1", name="Ольга", phones=("+79161234567",), timezone=zone_in_daytime()
        )
    )
    await store.add_order(
        OrderInput(
            external_id="TO-1",
            client_external_id="T-1",
            placed_at=now - timedelta(days=9),
            delivered_at=now - timedelta(days=5),
            amount=Decimal("990.00"),
        )
    )
    return client.id


async def test_a_silent_trunk_fails_the_call_as_ours_not_as_the_client_not_answering(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    client_id = await _client_due_for_a_call(store)
    port = closed_udp_port()
    dashboard_port = free_tcp_port()
    dash = Dashboard(
        f"http://127.0.0.1:{dashboard_port}",
        store,
        UserStore(session_factory(engine)),
        None,  # type: ignore[arg-type]
        Settings(_env_file=None, dashboard=dashboard_settings()),  # type: ignore[call-arg]
        engine,
    )
    await dash.add_user("anna", Role.MANAGER)
    settings = {
        **base_settings(tmp_path, db_url),
        "POVTOR_DASHBOARD_ENABLED": "true",
        "POVTOR_DASHBOARD_PORT": str(dashboard_port),
        "POVTOR_SIP_ENABLED": "true",
        "POVTOR_SIP_PROXY": f"127.0.0.1:{port}",
        "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
        "POVTOR_SIP_LOCAL_PORT": "0",
        "POVTOR_SIP_RING_TIMEOUT_S": "1.5",
    }
    async with running_worker(tmp_path / "w", settings) as worker:
        health = await worker.wait_health(lambda h: "trunk default" in h.get("components", {}))
        line = await worker.wait_log("trunk default down")
        http = await dash.signed_in("anna")
        async with http, http.get("/") as page:
            overview = await page.text()
    assert "trunk default" in overview  # the managers' overview says it too
    assert f"не работает (no response from 127.0.0.1:{port}" in overview
    assert health["status"] == "degraded"
    trunk = health["components"]["trunk default"]
    assert trunk["state"] == "down"
    assert f"no response from 127.0.0.1:{port}" in trunk["reason"]
    assert "WARNING" in line
    assert f"127.0.0.1:{port}" in line
    assert sum("trunk default down" in x for x in worker.lines) == 1

    async with engine.connect() as conn:
        call = (await conn.execute(text("SELECT outcome, sip_code, sip_reason FROM calls"))).one()
        attempt = (
            await conn.execute(
                text(
                    "SELECT id, state, attempt_no, our_failures FROM outreach_attempts "
                    "WHERE client_id = :c"
                ),
                {"c": client_id},
            )
        ).one()
        outcome = (
            await conn.execute(
                text("SELECT kind, detail FROM outreach_outcomes WHERE attempt_id = :a"),
                {"a": attempt.id},
            )
        ).one()
        contacts = (
            await conn.execute(
                text("SELECT count(*) FROM outreach_contacts WHERE client_id = :c"),
                {"c": client_id},
            )
        ).scalar_one()
    assert (call.outcome, call.sip_code) == ("failed", None)
    assert "no response from" in call.sip_reason
    assert (outcome.kind, outcome.detail.startswith("trunk failure: no response")) == (
        "failed",
        True,
    )
    assert attempt.state == "retry_scheduled"  # tried again later, whatever the tries left
    assert (attempt.attempt_no, attempt.our_failures) == (2, 1)  # a new call key, no try spent
    assert contacts == 0  # not a contact: the caps of the client are untouched


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_trunks_file_as_the_docs_show_starts_beside_a_test_call(
    db_url: str, tmp_path: Path
) -> None:
    sipp = await start_sipp(tmp_path, None, builtin="uas")
    trunks = tmp_path / "w" / "trunks.yaml"
    trunks.parent.mkdir(parents=True)
    trunks.write_text(
        f"- name: office\n  proxy: 127.0.0.1:{sipp.port}\n"
        f"- name: city\n  proxy: 127.0.0.1:{sipp.port}\n  max_concurrent_calls: 4\n"
    )
    sip_port = free_port()
    settings = {
        **base_settings(tmp_path, db_url),
        "POVTOR_OUTREACH_ENABLED": "false",
        "POVTOR_SIP_ENABLED": "true",
        "POVTOR_SIP_PROXY": f"127.0.0.1:{sipp.port}",
        "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
        "POVTOR_SIP_LOCAL_PORT": str(sip_port),
        "POVTOR_SIP_RTP_PORT_MIN": "0",
        "POVTOR_SIP_TRUNKS_FILE": str(trunks),
    }
    async with running_worker(tmp_path / "w", settings) as worker:
        # asked once the worker says it started: /healthz answers from before its channels are
        # built ("no channel configured" meanwhile), and when it is asked first depends on the
        # event loop's order of callbacks
        await worker.wait_log(" starting: ")
        status, health = await worker.healthz()
        # the worker holds POVTOR_SIP_LOCAL_PORT: a test call still goes out, on a free port
        rc, out, err = await povtor(tmp_path / "w", "call", "sip:bob@127.0.0.1", "--trunk", "city")
    assert (status, health["status"]) == (200, "ok"), worker.log[-3000:]
    assert rc == 0, out + err
    assert out.startswith("answered (SIP 200)")
    assert len(sipp.received("INVITE")) == 1
    await sipp.finish()  # -m 1: SIPp ends after the one call


async def test_two_trunks_on_one_port_are_refused_in_one_line(tmp_path: Path) -> None:
    trunks = tmp_path / "trunks.yaml"
    trunks.write_text("- name: office\n  proxy: 127.0.0.1:5999\n  local_port: 5072\n")
    write_env(
        tmp_path,
        {
            **base_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"),
            "POVTOR_SIP_ENABLED": "true",
            "POVTOR_SIP_LOCAL_PORT": "5072",
            "POVTOR_SIP_TRUNKS_FILE": str(trunks),
        },
    )
    rc, _out, err = await povtor(tmp_path, "run")
    assert rc == 2
    assert err.strip().splitlines() == [
        f"povtor run: {trunks}: trunks 'default' and 'office' both listen on port 5072: "
        "give one another local_port, or leave it out (a free port)"
    ]


async def test_a_proxy_name_that_does_not_resolve_fails_at_once_naming_the_host(
    tmp_path: Path,
) -> None:
    write_env(
        tmp_path,
        {
            "POVTOR_DATA_DIR": str(tmp_path / "data"),
            "POVTOR_SIP_PROXY": "sip.povtor-test.invalid:5060",
            "POVTOR_SIP_LOCAL_HOST": "127.0.0.1",
            "POVTOR_SIP_RING_TIMEOUT_S": "20",
        },
    )
    rc, out, err = await povtor(tmp_path, "call", "+79161234567", within=15)
    assert rc == 2, out + err
    (line,) = err.strip().splitlines()  # the resolver's words vary: no DNS server, NXDOMAIN
    assert line.startswith(
        "povtor call: trunk default: cannot resolve sip.povtor-test.invalid (DNS: "
    )
