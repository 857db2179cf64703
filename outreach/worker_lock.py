"""One worker per SQLite database: an exclusive ``flock`` on a file next to the database.

The kernel drops the lock when the holder dies, even by SIGKILL, so a crashed worker never
blocks the next one; the file only tells who holds it, for the error message.
"""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from povtor.errors import AlreadyRunning


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


class SqliteWorkerLock:
    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".worker.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another Povtor worker ({holder}) is already running on the SQLite database "
                f"{self.database}. SQLite allows one worker: stop that one first, or move to "
                "PostgreSQL (POVTOR_DATABASE_URL=postgresql+asyncpg://...) to run several."
            ) from None
        os.ftruncate(fd, 0)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {started}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SqliteWorkerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
