"""The overview's database check judges the page's own reads: no extra read per request, and a
database that took longer than the check's bound is shown as slow."""

from __future__ import annotations

from dashboard.context import Deps
from dashboard.overview import CHECK_TIMEOUT_S, status_checks
from povtor.settings import Settings


def _deps() -> Deps:
    """Only what the checks read: no store at all, so a read of it would fail the test."""
    deps = Deps.__new__(Deps)
    deps.settings = Settings(secret_key="test-secret-key", _env_file=None)  # type: ignore[arg-type]
    deps.calls = None
    deps.health = None
    deps.transcription_off = None
    return deps


async def test_database_is_available_when_the_page_reads_answered_in_time() -> None:
    [database, *_] = await status_checks(_deps(), 0.2)
    assert database == ("База данных", True, "доступна")


async def test_a_slow_database_is_shown_with_how_long_it_took() -> None:
    [database, *_] = await status_checks(_deps(), CHECK_TIMEOUT_S + 4.2)
    assert database == ("База данных", False, "отвечает медленно: 7 с")
