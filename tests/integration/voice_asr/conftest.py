"""Fixtures of the transcription tests: call-like audio, one loaded model for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _migrated_first(sqlite_template: Path) -> Path:
    """Migrate the template database before any async test runs.

    The shared ``sqlite_template`` fixture runs Alembic through ``asyncio.run``; made lazily after
    an async test, it leaves an unclosed loop behind (a ResourceWarning, an error here).
    """
    return sqlite_template
