"""Personal data on disk is readable by its owner only: the database, its WAL, recordings."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import text

from povtor.db import create_engine
from voice.recording import CallRecorder, RecordingWriter
from voice.storage import LocalStorage


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "povtor.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (phone TEXT)"))
            await conn.execute(text("INSERT INTO t VALUES ('+79161234567')"))
        async with engine.connect() as conn:  # keeps the WAL in place
            await conn.execute(text("SELECT * FROM t"))
            wal = path.with_name("povtor.db-wal")
            assert wal.exists()
            assert (_mode(path), _mode(wal)) == (0o600, 0o600)
    finally:
        await engine.dispose()


async def test_recordings_and_their_folders_are_owner_only(
    tmp_path: Path, writer: RecordingWriter
) -> None:
    root = tmp_path / "data" / "recordings"
    rec = CallRecorder.open(root / "incoming", "call-1", writer=writer)
    for _ in range(10):
        rec.write_tick(b"\x01\x00" * 160, b"\x02\x00" * 160)
    info = await rec.finish()
    uri = await LocalStorage(root).put(info.path, "2026/12/07/call-1.wav")

    stored = LocalStorage(root).path_of(uri)
    assert _mode(info.path) == 0o600
    assert _mode(stored) == 0o600
    for folder in (root / "incoming", root, tmp_path / "data", stored.parent, root / "2026"):
        assert _mode(folder) == 0o700, folder
