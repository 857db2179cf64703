"""Calls on the client card: the transcript as a dialogue and the recording behind a permission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import ClientInput, SqlHistoryStore
from povtor.domain import ChannelKind, ReasonCategory
from povtor.ports import DialogueLine, NewNpsResponse, NewTask
from tests.fakes.dashboard_calls import write_wav
from tests.integration.dashboard.conftest import Dashboard, serving

DIALOGUE = (
    DialogueLine("robot", 0.0, 3.5, "Оцените нас от нуля до десяти"),
    DialogueLine("client", 4.0, 5.2, "восемь"),
    DialogueLine("robot", 65.0, 67.0, "Спасибо"),
)


async def _call(dash: Dashboard, tmp_path: Path) -> tuple[int, bytes]:
    client = await dash.store.create_client(ClientInput("C1", name="Иван"))
    wav = write_wav(tmp_path / "call-7.wav", seconds=1.0)
    dash.calls.add(7, client.id, datetime.now(UTC), DIALOGUE, tmp_path / "call-7.wav")
    return client.id, wav


async def test_client_card_shows_the_call_as_a_dialogue(dash: Dashboard, tmp_path: Path) -> None:
    client_id, _ = await _call(dash, tmp_path)
    async with await dash.signed_in("anna") as http, http.get(f"/clients/{client_id}") as page:
        html = await page.text()
    assert 'data-start="4.0" data-end="5.2">' in html
    assert 'title="Слушать с этого места">0:04</button> <b>Клиент:</b> восемь' in html
    assert ">1:05</button> <b>Робот:</b> Спасибо" in html
    assert '<audio controls preload="metadata" src="/calls/7/recording">' in html
    assert '<script src="/static/player.js" defer>' in html


async def test_manager_streams_the_recording_with_ranges(dash: Dashboard, tmp_path: Path) -> None:
    _, wav = await _call(dash, tmp_path)
    async with await dash.signed_in("anna") as http:
        async with http.get("/calls/7/recording") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "audio/wav"
            assert response.headers["Cache-Control"] == "no-store"
            assert await response.read() == wav
        async with http.get("/calls/7/recording", headers={"Range": "bytes=0-43"}) as response:
            assert response.status == 206  # the player can seek
            assert await response.read() == wav[:44]
        async with http.get("/calls/7/recording?download=1") as response:
            assert response.headers["Content-Disposition"].startswith("attachment")


async def test_viewer_may_not_hear_recordings(dash: Dashboard, tmp_path: Path) -> None:
    client_id, _ = await _call(dash, tmp_path)
    async with await dash.signed_in("vera") as http:
        async with http.get("/calls/7/recording") as response:
            assert response.status == 403
            assert b"RIFF" not in await response.read()
        async with http.get(f"/clients/{client_id}") as page:
            html = await page.text()
        assert "<audio" not in html
        assert "восемь" not in html  # a transcript is for those who may listen
        assert "Запись и расшифровка доступны менеджерам" in html


async def test_pending_transcript_says_why_when_transcription_is_off(
    engine: AsyncEngine, store: SqlHistoryStore, db_url: str, tmp_path: Path
) -> None:
    why = "нет модели распознавания речи «ru-small»"
    async with serving(engine, store, db_url, tmp_path, transcription_off=why) as dash:
        client = await dash.store.create_client(ClientInput("C1", name="Иван"))
        write_wav(tmp_path / "call-9.wav")
        view = dash.calls.add(9, client.id, datetime.now(UTC), (), tmp_path / "call-9.wav")
        dash.calls.set_state(9, "pending")
        assert view.has_recording
        async with await dash.signed_in("anna") as http:
            async with http.get(f"/clients/{client.id}") as page:
                html = await page.text()
            assert f"Расшифровки не будет: {why}." in html
            assert "Расшифровка готовится" not in html
            async with http.get("/") as page:
                overview = await page.text()
            assert f"Расшифровка звонков: выключена: {why}" in overview


async def test_pending_transcript_is_in_progress_while_transcription_runs(
    dash: Dashboard, tmp_path: Path
) -> None:
    client = await dash.store.create_client(ClientInput("C1", name="Иван"))
    write_wav(tmp_path / "call-9.wav")
    dash.calls.add(9, client.id, datetime.now(UTC), (), tmp_path / "call-9.wav")
    dash.calls.set_state(9, "pending")
    async with await dash.signed_in("anna") as http, http.get(f"/clients/{client.id}") as page:
        assert "Расшифровка готовится." in await page.text()


async def test_unknown_or_missing_recordings_are_not_found(
    dash: Dashboard, tmp_path: Path
) -> None:
    await _call(dash, tmp_path)
    async with await dash.signed_in("anna") as http:
        async with http.get("/calls/8/recording") as response:
            assert response.status == 404
        (tmp_path / "call-7.wav").unlink()  # swept by retention
        async with http.get("/calls/7/recording") as response:
            assert response.status == 404


async def test_answer_page_shows_the_words_the_call_beside_its_dialogue_and_the_tasks(
    dash: Dashboard, tmp_path: Path
) -> None:
    client_id, _ = await _call(dash, tmp_path)  # call 7, started now
    answer = await dash.store.record_nps(
        NewNpsResponse(
            client_id,
            3,
            ChannelKind.CALL,
            reason_text="долго везли, звоните 8 916 123 45 67",
            reason_category=ReasonCategory.DELIVERY,
            answered_at=datetime.now(UTC),
        )
    )
    other = await dash.store.record_nps(
        NewNpsResponse(client_id, 9, ChannelKind.TELEGRAM, answered_at=datetime.now(UTC))
    )
    async with await dash.signed_in("anna") as http:
        async with http.get(f"/nps/{answer.id}") as page:
            html = await page.text()
        assert "долго везли, звоните 8 916 123 45 67" in html
        assert "доставка" in html
        assert 'data-call="7"' in html
        assert '<audio controls preload="metadata" src="/calls/7/recording">' in html
        assert ">0:04</button> <b>Клиент:</b> восемь" in html
        assert "После этого ответа задач не было." in html
        await dash.store.create_task(
            NewTask(client_id, "detractor", "Извиниться", datetime.now(UTC) + timedelta(1))
        )
        async with http.get(f"/nps/{answer.id}") as page:
            assert "Извиниться" in await page.text()
        async with http.get(f"/nps/{other.id}") as page:
            assert 'data-call="7"' not in await page.text()  # a Telegram answer has no call
        async with http.get("/nps/999999") as page:
            assert page.status == 404
    async with await dash.signed_in("vera") as http, http.get(f"/nps/{answer.id}") as page:
        html = await page.text()
    assert "<audio" not in html
    assert "восемь" not in html
    assert "••• ••• •• 67" in html
