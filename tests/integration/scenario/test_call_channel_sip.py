"""CallChannel against real SIP peers: an NPS call to baresip scored by keypad, busy, no answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from crm_sync.history.store import ClientInput, SqlHistoryStore
from povtor.db import session_factory
from povtor.domain import Attempt, AttemptState, ChannelKind, Client, OutcomeKind, Purpose
from povtor.errors import ChannelStopping
from povtor.settings import CallSettings, Settings
from tests.integration.scenario.baresip import start_baresip
from tests.integration.sip.peers import read_wav, start_sipp
from voice.call_channel import build_call_channel, call_uuid_for
from voice.call_records import CallState
from voice.call_store import CallStore
from voice.scenario import SHIPPED, render

pytestmark = pytest.mark.sip

CLIENT = Client(id=1, external_id="c1", name="Иван", phones=("+79990001122",))


def attempt(purpose: Purpose, key: str = "k1") -> Attempt:
    return Attempt(
        id=1,
        client_id=1,
        purpose=purpose,
        channel=ChannelKind.CALL,
        state=AttemptState.IN_PROGRESS,
        not_before=datetime.now(UTC),
        idempotency_key=key,
    )


def settings_for(tmp_path: Path) -> Settings:
    """Shipped scenarios, but a shorter wait for the free answers (the phone stays silent)."""
    own = tmp_path / "scenarios"
    own.mkdir()
    text = (SHIPPED / "nps.yaml").read_text(encoding="utf-8")
    (own / "nps.yaml").write_text(text.replace("wait_s: 7\n    max", "wait_s: 1.5\n    max"))
    return Settings(
        data_dir=tmp_path / "data",
        call=CallSettings(
            scenarios_dir=own, live_asr=False, company_name="Магазин «Зерно»", tts_engine="espeak"
        ),
    )


def envelope(pcm: bytes) -> np.ndarray:
    samples = np.frombuffer(pcm[: len(pcm) // 320 * 320], dtype="<i2").astype(np.float64)
    return np.sqrt(np.mean(samples.reshape(-1, 160) ** 2, axis=1))


def best_match(needle: np.ndarray, haystack: np.ndarray) -> tuple[float, int]:
    """Highest normalised correlation of ``needle`` along ``haystack`` and where (frames)."""
    a = (needle - needle.mean()) / (needle.std() or 1)
    best, where = -1.0, -1
    for lag in range(len(haystack) - len(needle) + 1):
        b = haystack[lag : lag + len(needle)]
        score = float(np.dot(a, (b - b.mean()) / (b.std() or 1)) / len(a))
        if score > best:
            best, where = score, lag
    return best, where


async def test_nps_call_scored_nine_by_keypad_is_heard_and_reported(
    tmp_path: Path, engine_for
) -> None:
    phone = await start_baresip(tmp_path, CLIENT.phones[0])
    settings = settings_for(tmp_path)
    try:
        async with engine_for(phone.sip_port) as engine:
            channel = build_call_channel(settings, engine, worker_id="test-worker")
            try:
                running = asyncio.create_task(channel.execute(attempt(Purpose.NPS), CLIENT))
                await phone.wait_event("CALL_ESTABLISHED")
                await phone.command("sndcode", "9")
                async with asyncio.timeout(60):
                    outcome = await running
                await phone.wait_event("CALL_CLOSED")
            finally:
                channel.close()
        greeting_text = outcome.data["prompts"][0]["text"]
        greeting = await channel.synths[Purpose.NPS].synth(greeting_text)
    finally:
        await phone.stop()

    assert outcome.kind is OutcomeKind.ANSWERED, outcome
    assert outcome.ref is not None
    assert outcome.ref.startswith("call:")
    data = outcome.data
    assert data["score"] == 9
    assert data["score_via"] == "keypad"
    assert data["dtmf"] == "9"
    assert "optout" not in data
    steps = [p["step"] for p in data["prompts"]]
    assert steps == ["disclosure", "greeting", "score", "ask_high", "thanks"]
    assert "робот независимого отдела контроля качества магазина «Зерно»" in greeting_text
    assert "Разговор записывается" in greeting_text
    assert data["hung_up_by"] == "robot"
    assert data["finished"] == "end"

    # The phone heard the robot: the greeting's loudness envelope is found in its recording,
    # near the start, and the robot was quiet while it waited for the free answer.
    channels, heard = read_wav(phone.heard())
    assert channels == 1
    heard_env, greeting_env = envelope(heard), envelope(greeting)
    score, lag = best_match(greeting_env, heard_env[: len(greeting_env) + 150])
    assert score > 0.8, score
    assert lag * 0.02 < 2.0
    ask_high = data["prompts"][3]
    wait = heard_env[round(ask_high["end"] / 0.02) + 10 : round(ask_high["end"] / 0.02) + 60]
    assert wait.max() < 100  # silence (G.711 quiet) while listening
    spoken = (heard_env > 300).sum() * 0.02
    said = sum(p["end"] - p["start"] for p in data["prompts"])
    assert 0.4 * said < spoken < 1.1 * said


@pytest.mark.parametrize(("code", "reason", "kind"), [(486, "Busy Here", OutcomeKind.BUSY)])
async def test_busy_line_is_reported_busy(
    tmp_path: Path, engine_for, code: int, reason: str, kind: OutcomeKind
) -> None:
    sipp = await start_sipp(tmp_path, "final_answer", fill={"CODE": str(code), "REASON": reason})
    async with engine_for(sipp.port) as engine:
        channel = build_call_channel(settings_for(tmp_path), engine, worker_id="test-worker")
        try:
            outcome = await channel.execute(attempt(Purpose.REORDER), CLIENT)
        finally:
            channel.close()
    assert await sipp.finish() == 0, sipp.log()
    assert outcome.kind is kind
    assert outcome.sip_code == code
    assert "prompts" not in outcome.data


async def test_unanswered_call_is_reported_no_answer(tmp_path: Path, engine_for) -> None:
    sipp = await start_sipp(tmp_path, "ring_no_answer")
    async with engine_for(sipp.port, ring_timeout_s=1.0) as engine:
        channel = build_call_channel(settings_for(tmp_path), engine, worker_id="test-worker")
        try:
            outcome = await channel.execute(attempt(Purpose.WINBACK), CLIENT)
        finally:
            channel.close()
    assert await sipp.finish() == 0, sipp.log()
    assert outcome.kind is OutcomeKind.NO_ANSWER
    assert outcome.data["dtmf"] == ""


def test_rendered_nps_question_is_what_the_brief_asks() -> None:
    text = (SHIPPED / "nps.yaml").read_text(encoding="utf-8")
    assert "Порекомендуете ли вы нас друзьям и знакомым" in render(text, {"company": "x"})


async def test_a_call_in_progress_closes_politely_when_the_worker_stops(
    tmp_path: Path, engine_for
) -> None:
    phone = await start_baresip(tmp_path, CLIENT.phones[0])
    settings = settings_for(tmp_path)
    try:
        async with engine_for(phone.sip_port) as engine:
            channel = build_call_channel(settings, engine, worker_id="test-worker")
            try:
                running = asyncio.create_task(channel.execute(attempt(Purpose.NPS), CLIENT))
                await phone.wait_event("CALL_ESTABLISHED")
                channel.begin_drain()  # SIGTERM: the robot stops where it is and says goodbye
                async with asyncio.timeout(30):
                    outcome = await running
                await phone.wait_event("CALL_CLOSED")
                with pytest.raises(ChannelStopping):  # and dials no one new
                    await channel.execute(attempt(Purpose.NPS, key="k2"), CLIENT)
            finally:
                channel.close()
        closing = await channel.synths[Purpose.NPS].synth(channel.closing_phrase)
    finally:
        await phone.stop()

    assert outcome.kind is OutcomeKind.INTERRUPTED, outcome
    assert outcome.data["finished"] == "closed_on_stop"
    assert outcome.data["hung_up_by"] == "robot"
    _channels, heard = read_wav(phone.heard())  # the phone heard the closing phrase
    needle = envelope(closing)[:150]  # its first three seconds
    score, _lag = best_match(needle, envelope(heard))
    assert score > 0.8, score


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_call_cut_short_by_the_drain_timeout_is_stored_ended_not_left_active(
    tmp_path: Path, engine_for, engine, store: SqlHistoryStore
) -> None:
    """The dispatcher cancels executions still running when its drain window ends: the line is
    closed and the call is stored as interrupted, not left active for the next start."""
    client = await store.create_client(
        ClientInput(external_id="c1", name="Иван", phones=CLIENT.phones)
    )
    phone = await start_baresip(tmp_path, client.phones[0])
    calls = CallStore(session_factory(engine))
    the_attempt = attempt(Purpose.NPS)
    try:
        async with engine_for(phone.sip_port) as sip:
            channel = build_call_channel(
                settings_for(tmp_path), sip, calls, worker_id="test-worker"
            )
            try:
                running = asyncio.create_task(channel.execute(the_attempt, client))
                await phone.wait_event("CALL_ESTABLISHED")
                running.cancel()  # the drain window ran out
                with pytest.raises(asyncio.CancelledError):
                    await running
                await phone.wait_event("CALL_CLOSED")
            finally:
                channel.close()
    finally:
        await phone.stop()

    record = await calls.get_call(call_uuid_for(the_attempt))
    assert record.state is CallState.FINISHED
    assert record.outcome is OutcomeKind.INTERRUPTED
