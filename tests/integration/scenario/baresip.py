"""A scripted phone for the tests: baresip answering automatically, driven over ctrl_tcp.

It records what it hears (sndfile: ``*-dec.wav`` is the audio it decoded, i.e. the robot) and
sends keypad digits with the ``sndcode`` command (RFC 4733 on the negotiated telephone-event).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.sip.peers import baresip_sip_port, free_port, wait_until, write_wav


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Baresip:
    process: asyncio.subprocess.Process
    sip_port: int
    ctrl_port: int
    snd_dir: Path
    log: Path
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)

    async def _read(self) -> dict[str, Any]:
        assert self.reader is not None
        size = int((await self.reader.readuntil(b":"))[:-1])
        body = await self.reader.readexactly(size + 1)
        return dict(json.loads(body[:-1]))

    async def wait_event(self, kind: str, deadline_s: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(deadline_s):
            while True:
                message = await self._read()
                if message.get("event"):
                    self.events.append(message)
                    if message.get("type") == kind:
                        return message

    async def command(self, command: str, params: str = "") -> None:
        assert self.writer is not None
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        self.writer.write(str(len(body)).encode() + b":" + body + b",")
        await self.writer.drain()

    def heard(self) -> Path:
        """The WAV of what the phone decoded from the robot."""
        found = sorted(self.snd_dir.glob("*-dec.wav"))
        assert found, f"no recording in {self.snd_dir}: {list(self.snd_dir.iterdir())}"
        return found[0]

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_baresip(
    tmp: Path, user: str = "bob", source_pcm: bytes = bytes(8000 * 2 * 60)
) -> Baresip:
    """An auto-answering phone for ``user`` on loopback that says ``source_pcm`` (default: a
    minute of quiet)."""
    folder = tmp / f"baresip-{free_port()}"
    snd = folder / "snd"
    snd.mkdir(parents=True)
    source = write_wav(folder / "source.wav", source_pcm)
    sip_port, ctrl_port = baresip_sip_port(), free_port(socket.SOCK_STREAM)
    rtp = random.randrange(30000, 39000, 2)
    (folder / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{sip_port}",
                "audio_player aubridge,null0",
                f"audio_source aufile,{source}",
                "audio_alert aubridge,null0",
                f"rtp_ports {rtp}-{rtp + 20}",
                "module_path /usr/lib/baresip/modules",
                *[f"module {m}.so" for m in ("g711", "aufile", "aubridge", "sndfile")],
                *[f"module {m}.so" for m in ("account", "menu", "ctrl_tcp")],
                f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
                f"snd_path {snd}",
                "",
            ]
        )
    )
    (folder / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{sip_port}>;regint=0;answermode=auto;audio_codecs=PCMU\n"
    )
    log = folder / "baresip.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            "baresip", "-f", str(folder), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )
    phone = Baresip(process, sip_port, ctrl_port, snd, log)
    try:
        await wait_until(
            lambda: _listening(ctrl_port) or process.returncode is not None, 10, "baresip"
        )
        if process.returncode is not None:
            raise AssertionError(f"baresip exited: {log.read_text(errors='replace')}")
        await phone.connect()
    except BaseException:
        await phone.stop()
        raise
    return phone


@asynccontextmanager
async def phones(tmp: Path) -> AsyncIterator[Callable[..., Awaitable[Baresip]]]:
    """``async with phones(tmp) as start: a = await start("bob")``: every phone started is
    stopped at the end, also the first when a second one fails to start."""
    started: list[Baresip] = []

    async def start(user: str = "bob", source_pcm: bytes | None = None) -> Baresip:
        phone = await start_baresip(tmp, user, *(() if source_pcm is None else (source_pcm,)))
        started.append(phone)
        return phone

    try:
        yield start
    finally:
        for phone in reversed(started):
            await phone.stop()
