"""baresip as the client's phone: auto-answers, speaks a WAV, keeps what it heard (sndfile),
driven and watched through ctrl_tcp netstrings (no sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from tests.integration.sip.peers import baresip_sip_port, free_port

MODULES = ("g711", "aufile", "aubridge", "sndfile", "account", "menu", "ctrl_tcp")


class BaresipPhone:
    def __init__(self, folder: Path, speak_wav: Path) -> None:
        self.folder = folder
        self.speak_wav = speak_wav
        self.sip_port = baresip_sip_port()
        self.ctrl_port = free_port(kind=1)  # SOCK_STREAM
        rtp = free_port(even=True)
        self.rtp_ports = f"{rtp}-{rtp + 9}"
        self.snd_path = folder / "heard"
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    def _write_config(self) -> None:
        self.snd_path.mkdir(parents=True, exist_ok=True)
        lines = [
            "module_path /usr/lib/baresip/modules",
            f"sip_listen 127.0.0.1:{self.sip_port}",
            f"audio_source aufile,{self.speak_wav}",
            "audio_player aubridge,null0",
            "audio_alert aubridge,null0",
            f"rtp_ports {self.rtp_ports}",
            f"snd_path {self.snd_path}",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
            *(f"module {name}.so" for name in MODULES),
        ]
        (self.folder / "config").write_text("\n".join(lines) + "\n")
        account = (
            f"<sip:bob@127.0.0.1:{self.sip_port}>;regint=0;answermode=auto;audio_codecs=PCMU\n"
        )
        (self.folder / "accounts").write_text(account)

    async def __aenter__(self) -> BaresipPhone:
        self._write_config()
        self._process = await asyncio.create_subprocess_exec(
            "baresip", "-f", str(self.folder),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, cwd=self.folder,
        )  # fmt: skip
        reader = writer = None
        async with asyncio.timeout(10):
            while writer is None:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                except OSError:
                    if self._process.returncode is not None:
                        raise RuntimeError("baresip exited at start") from None
                    await asyncio.sleep(0.02)  # polling the port until baresip listens
        assert reader is not None
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self.command("quit")
            self._writer.close()
        if self._process is not None:
            try:
                async with asyncio.timeout(5):
                    await self._process.wait()
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await self._read_netstrings(reader)

    async def _read_netstrings(self, reader: asyncio.StreamReader) -> None:
        while True:
            length = await reader.readuntil(b":")
            payload = await reader.readexactly(int(length[:-1]))
            await reader.readexactly(1)  # the trailing comma
            message = json.loads(payload)
            if message.get("event"):
                await self.events.put(message)
            elif message.get("response"):
                await self.responses.put(message)

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        assert self._writer is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        async with asyncio.timeout(5):
            return await self.responses.get()

    async def wait_event(self, kind: str, deadline_s: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(deadline_s):
            while True:
                event = await self.events.get()
                if event.get("type") == kind:
                    return event

    def heard_files(self) -> list[Path]:
        return sorted(self.snd_path.glob("*.wav"))
