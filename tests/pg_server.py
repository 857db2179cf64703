"""A throwaway PostgreSQL server for the test run, when none answers at the test URL.

A newcomer's machine rarely runs PostgreSQL, but half of the store tests are about it. When
``POVTOR_TEST_PG_URL`` is unset and nothing listens at the default address, the suite makes a
cluster of its own from the installed server binaries (Debian's ``postgresql`` package): in a
temporary folder, on a free loopback port, with trust authentication and no fsync (the data is
thrown away). PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` system
user (made by the package) or ``nobody``. It is stopped and its folder removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
_BIN_ROOT = Path("/usr/lib/postgresql")


class NoPostgres(RuntimeError):
    """Neither a server at the test URL nor the binaries to start one."""


def answers(url: str, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 5432), timeout_s
        ):
            return True
    except OSError:
        return False


def server_binaries() -> Path | None:
    """The newest installed ``.../bin`` folder holding ``initdb`` and ``pg_ctl``, if any."""
    found = (
        []
        if not _BIN_ROOT.is_dir()
        else sorted(
            (p / "bin" for p in _BIN_ROOT.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        )
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayPostgres:
    """``start()`` -> an admin URL (database ``postgres``); ``stop()`` stops and removes it."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.port: int | None = None
        self._bin: Path | None = None
        self._user: str | None = None
        self._options = ""

    def start(self) -> str:
        bindir = server_binaries()
        if bindir is None:
            raise NoPostgres(
                "no PostgreSQL answers at the test URL and no server binaries are installed: "
                "install Debian's postgresql package or set POVTOR_TEST_PG_URL"
            )
        self._bin = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="povtor-test-pg-"))
        if os.geteuid() == 0:  # initdb and postgres refuse root
            self._user = _unprivileged_user()
            user = pwd.getpwnam(self._user)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        data = self.folder / "data"
        self._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C.UTF-8",
        )
        self.port = _free_port()
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._options = options
        self._run(
            "pg_ctl",
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def restart(self) -> None:
        """Stop the server ("fast": every session is cut, as in a crash or a failover seen by
        the clients) and start it again on the same port with the same data."""
        assert self.folder is not None
        # -l: the new server's output goes to the log, not to our pipe (which would never close)
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-l", str(self.folder / "server.log"),
                  "-m", "fast", "-w", "-t", "60", "restart")  # fmt: skip

    def halt(self) -> None:
        """Stop the server (every session cut) and keep its data: ``resume()`` brings it back."""
        assert self.folder is not None
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        assert self.folder is not None
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-o", self._options,
                  "-l", str(self.folder / "server.log"), "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        if self.folder is None:
            return
        data = self.folder / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def _run(self, program: str, *args: str) -> None:
        assert self._bin is not None
        command = [str(self._bin / program), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise NoPostgres("running as root and neither a postgres nor a nobody user exists")
