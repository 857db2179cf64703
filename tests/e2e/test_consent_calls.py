"""Consent by default, with real processes (`povtor run` and SIPp answering as the phones): a
reorder offer is an advertising call and goes only to the client who agreed to offers; an NPS
survey is a service call and goes without one."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from outreach.tables import AttemptRow
from povtor.domain import ConsentChannel
from tests.e2e.test_call_crash import _start_worker, calling_worker_env
from tests.e2e.test_clean_stop import dialled
from tests.e2e.test_worker import _zone_in_daytime
from tests.integration.sip.peers import start_sipp, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.sip]

NO_CONSENT, AGREED, SURVEYED = "79160000001", "79160000002", "79160000003"


async def client(
    store: SqlHistoryStore, phone: str, zone: str, orders: list[tuple[int, int | None]], ads: bool
) -> None:
    """A client with orders placed ``days`` ago (delivered ``delivered`` days ago, if given)."""
    now = datetime.now(UTC)
    granted = ((ConsentChannel.CALL, True, "website"),) if ads else ()
    await store.create_client(
        ClientInput(
            phone, name="Клиент", phones=(f"+{phone}",), timezone=zone, ad_consents=granted
        )
    )
    for n, (days, delivered) in enumerate(orders):
        await store.add_order(
            OrderInput(
                external_id=f"{phone}-{n}",
                client_external_id=phone,
                placed_at=now - timedelta(days=days),
                delivered_at=None if delivered is None else now - timedelta(days=delivered),
                amount=Decimal("990.00"),
            )
        )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_consent_blocks_an_advertising_call_but_not_an_nps_one(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    zone = _zone_in_daytime(datetime.now(UTC))
    every_month = [(60, None), (30, None)]  # a reorder is due now
    await client(store, NO_CONSENT, zone, every_month, ads=False)
    await client(store, AGREED, zone, every_month, ads=True)
    await client(store, SURVEYED, zone, [(8, 5)], ads=False)  # delivered: NPS due
    sipp = await start_sipp(tmp_path, None, builtin="uas", calls=3)
    env = calling_worker_env(
        db_url,
        tmp_path / "data",
        sipp.port,
        POVTOR_ASR_BACKGROUND="false",
        POVTOR_OUTREACH_PACING="",  # both allowed calls at once
    )
    worker = await _start_worker(env)
    try:
        await wait_until(lambda: len(sipp.received("ACK")) >= 2, 120, "two calls up")
        async with engine.connect() as conn:  # the pass is written before anything is dialled
            planned = (await conn.execute(select(AttemptRow.purpose))).scalars().all()
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(worker.communicate(), timeout=120)
        await sipp.stop()
    assert worker.returncode == 0, stderr.decode()[-3000:]
    assert sorted(planned) == ["nps", "reorder"]
    assert set(dialled(sipp.received("INVITE"))) == {AGREED, SURVEYED}
