"""The demo's phones: one SIPp on 127.0.0.1 answers every call the robot places.

How each number behaves (busy, rings out, hangs up halfway, answers and presses a key) is read
from the number itself by the scenario (``phones.xml``). An answering phone says a short Russian
phrase synthesised with espeak-ng before the demo starts (then keeps sending silence, as a
line does), so recordings carry both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from pathlib import Path

from app.demo.children import die_with_parent
from povtor.errors import ConfigError

SCENARIO = Path(__file__).with_name("phones.xml")
ANSWER_TEXT = "Алло! Да, слушаю вас."
TOOLS = {"sipp": "sip-tester", "espeak-ng": "espeak-ng", "sox": "sox"}


def missing_tools() -> list[str]:
    """Debian packages the phones need and this machine lacks."""
    return [package for tool, package in TOOLS.items() if shutil.which(tool) is None]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


async def _run(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise ConfigError(f"{args[0]} failed: {err.decode(errors='replace')[-300:]}")


class DemoPhones:
    """Start with ``async with``; ``address`` is what the robot's trunk points at."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def _synthesise(self) -> None:
        spoken = self.folder / "answer-16k.wav"
        await _run("espeak-ng", "-v", "ru", "-s", "150", "-w", str(spoken), ANSWER_TEXT)
        answer = self.folder / "answer.wav"
        # then silence: the robot's listener keeps time by the audio it receives, so the line
        # must go on sending (as a real phone does) until somebody hangs up
        await _run(
            "sox", str(spoken), "-r", "8000", "-c", "1", "-e", "u-law", str(answer),
            "pad", "0", "60",
        )  # fmt: skip

    async def __aenter__(self) -> DemoPhones:
        missing = missing_tools()
        if missing:
            raise ConfigError(
                "the demo's phones need these Debian packages: " + " ".join(missing)
                + " (`make system-deps` installs them)"
            )  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        await self._synthesise()
        shutil.copyfile(SCENARIO, self.folder / "phones.xml")
        self.port = free_udp_port()
        media = free_udp_port() & ~1
        args = ["sipp", "-i", "127.0.0.1", "-p", str(self.port), "-mi", "127.0.0.1"]
        args += ["-mp", str(media), "-sf", "phones.xml", "-nostdin", "-trace_err"]
        args += ["-error_file", "errors.log", "-trace_msg", "-message_file", "messages.log"]
        self._process = await asyncio.create_subprocess_exec(
            *args,
            cwd=self.folder,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops SIPp itself
            preexec_fn=die_with_parent(),  # and a SIGKILLed demo takes SIPp with it
        )
        async with asyncio.timeout(10):
            while not _port_taken(self.port):  # SIPp gives no other sign that it listens
                if self._process.returncode is not None:
                    raise ConfigError("SIPp (the demo's phones) exited at start")
                await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(5):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
