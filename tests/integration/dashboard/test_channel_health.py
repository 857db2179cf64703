"""The overview names the bot while Telegram is away, with the reason, and not after."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from povtor.health import HealthBoard, HealthState
from tests.integration.dashboard.conftest import serving


async def test_overview_warns_while_telegram_is_away_and_not_after(
    engine: AsyncEngine, store: SqlHistoryStore, db_url: str, tmp_path: Path
) -> None:
    board = HealthBoard()
    board.report(
        "telegram", HealthState.DOWN, "cannot reach the Bot API at api.telegram.org: timeout"
    )
    async with (
        serving(engine, store, db_url, tmp_path, health=board) as dash,
        await dash.signed_in("vera") as http,
    ):
        async with http.get("/") as page:
            html = await page.text()
        problem = "не работает (cannot reach the Bot API at api.telegram.org: timeout)"
        assert f"telegram: {problem}" in html

        board.ok("telegram")
        async with http.get("/") as page:
            assert problem not in await page.text()
