"""The overview names a channel that does not work, in words a manager reads, with the reason."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from app.health import HealthBoard
from crm_sync.store import SqlHistoryStore
from tests.integration.dashboard.conftest import serving


async def test_overview_warns_while_telegram_is_away_and_not_after(
    engine: AsyncEngine, store: SqlHistoryStore, db_url: str, tmp_path: Path
) -> None:
    board = HealthBoard()
    board.report(
        "telegram",
        ok=False,
        state="unreachable",
        reason="cannot reach the Bot API at api.telegram.org: timeout",
    )
    async with (
        serving(engine, store, db_url, tmp_path, health=board) as dash,
        await dash.signed_in("vera") as http,
    ):
        async with http.get("/") as page:
            html = await page.text()
        assert "channel-warning" in html
        assert "Telegram: нет связи; сообщения ждут и уйдут, когда связь вернётся" in html
        assert "cannot reach the Bot API at api.telegram.org: timeout" in html

        board.report("telegram", ok=True, state="ok")
        async with http.get("/") as page:
            assert "channel-warning" not in await page.text()
