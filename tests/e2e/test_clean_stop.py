"""SIGTERM during many calls, with real processes (`povtor run` and SIPp answering as the
phones): no INVITE after the signal, every call ended with a BYE from the robot, every attempt
finished or given back (none left claimed or in progress, no call left active), and after a
restart the contacts left over are made once each, nothing dialled twice.

The number of calls comes from POVTOR_TEST_STOP_CALLS (50 by default; fewer on a loaded
machine)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from outreach.tables import AttemptRow
from tests.e2e.test_call_crash import _start_worker, calling_worker_env
from tests.e2e.test_worker import _zone_in_daytime
from tests.integration.sip.peers import start_sipp, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.sip]

CALLS = int(os.environ.get("POVTOR_TEST_STOP_CALLS", "50"))
LEFT = 5  # due as well, but no free line for them before the signal
TO_RE = re.compile(r"^To:.*?(\d{11})", re.M)


def dialled(invites: list[str]) -> Counter[str]:
    return Counter(m.group(1) for m in map(TO_RE.search, invites) if m)


async def states(engine: AsyncEngine) -> Counter[str]:
    async with engine.connect() as conn:
        return Counter(r[0] for r in await conn.execute(select(AttemptRow.state)))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sigterm_during_many_calls_places_none_and_ends_every_call_politely(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    zone = _zone_in_daytime(now)
    for i in range(CALLS + LEFT):
        ext = f"S-{i}"
        await store.create_client(
            ClientInput(external_id=ext, name="Клиент", phones=(f"+7916{i:07d}",), timezone=zone)
        )
        await store.add_order(
            OrderInput(
                external_id=f"SO-{i}",
                client_external_id=ext,
                placed_at=now - timedelta(days=9),
                delivered_at=now - timedelta(days=5),
                amount=Decimal("990.00"),
            )
        )
    sipp = await start_sipp(
        tmp_path, None, builtin="uas", calls=CALLS + LEFT, extra=["-timeout", "300s"]
    )
    try:
        env = calling_worker_env(
            db_url,
            tmp_path / "data",
            sipp.port,
            POVTOR_SIP_MAX_CONCURRENT_CALLS=str(CALLS),
            POVTOR_SIP_CALLS_PER_SECOND="50",
            POVTOR_ASR_BACKGROUND="false",
            POVTOR_OUTREACH_CONCURRENCY=str(CALLS),
            POVTOR_OUTREACH_PACING="",
            POVTOR_OUTREACH_APPROVAL_THRESHOLD="0",
            POVTOR_OUTREACH_DRAIN_TIMEOUT_S="60",
        )
        worker = await _start_worker(env)
        try:
            # every line busy: each call answered (SIPp got the robot's ACK)
            try:
                await wait_until(
                    lambda: len(sipp.received("ACK")) >= CALLS, 240, f"{CALLS} calls up"
                )
            except TimeoutError as err:
                if worker.returncode is None:
                    worker.kill()
                _, stderr = await worker.communicate()
                raise AssertionError(f"{err}: {stderr.decode()[-4000:]}\n{sipp.log()}") from err
            before = len(sipp.received("INVITE"))
            worker.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(worker.communicate(), timeout=120)
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        assert worker.returncode == 0, stderr.decode()[-3000:]
        invites = sipp.received("INVITE")
        assert before == CALLS
        assert len(invites) == before  # no new call after the signal
        assert len(sipp.received("BYE")) == len(invites)  # each call ended by the robot
        after_stop = await states(engine)
        assert after_stop["claimed"] == after_stop["in_progress"] == 0
        assert after_stop["retry_scheduled"] == CALLS  # interrupted politely: tried again later
        assert after_stop["planned"] == LEFT  # given back, never started
        async with engine.connect() as conn:
            from voice.tables import CallRow

            active = await conn.execute(select(CallRow.uuid).where(CallRow.state == "active"))
            assert active.all() == [], stderr.decode()[-6000:]

        restarted = await _start_worker(env)
        try:
            await wait_until(
                lambda: len(sipp.received("ACK")) >= CALLS + LEFT, 120, "the calls left over"
            )
        finally:
            restarted.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(restarted.communicate(), timeout=120)
        assert restarted.returncode == 0, stderr.decode()[-3000:]
        counts = dialled(sipp.received("INVITE"))
    finally:
        await sipp.stop()
    assert len(counts) == CALLS + LEFT
    assert max(counts.values()) == 1  # nothing dialled twice
