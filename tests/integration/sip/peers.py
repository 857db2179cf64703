"""Real SIP peers for the tests: SIPp runs, a lossy UDP relay, free ports, test tones."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import os
import re
import socket
import struct
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_SHARE = Path("/usr/share/sip-tester")


def free_port(kind: int = socket.SOCK_DGRAM, even: bool = False) -> int:
    """A port free for UDP (and, with ``even``, its neighbour too, for SIPp's RTP)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not even:
            return port
        if port % 2 == 0 and port < 65000 and _free(port + 2):
            return port
    raise RuntimeError("no free port")


def baresip_sip_port() -> int:
    """A port free for baresip's SIP: UDP and TCP on it, and TCP on the next one (TLS), which
    baresip also opens; a busy one makes it exit at start."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and all(_tcp_free(p) for p in (port, port + 1)):
            return port
    raise RuntimeError("no free port for baresip")


def _tcp_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def udp_bound(port: int) -> bool:
    """Whether some process listens on UDP ``port`` (read from /proc, no packet sent)."""
    hexport = f":{port:04X} "
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table, encoding="ascii") as handle:
                if any(hexport in line.split("\n")[0][:30] for line in handle):
                    return True
        except OSError:
            continue
    return False


async def wait_until(
    condition: object, deadline_s: float, what: str, *, every_s: float = 0.01
) -> None:
    """Poll a condition (a function, or a coroutine function such as a database read) until
    it holds; fail after ``deadline_s``. ``every_s``: how often (a condition that reads another
    process's database is polled less often)."""
    assert callable(condition)
    end = time.monotonic() + deadline_s
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(every_s)


@dataclass
class SippRun:
    process: asyncio.subprocess.Process
    port: int
    media_port: int
    messages: Path
    errors: Path

    async def finish(self, deadline_s: float = 20.0) -> int:
        """SIPp's exit code (0: every call followed the scenario)."""
        try:
            async with asyncio.timeout(deadline_s):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"SIPp did not finish; log:\n{self.log()}") from None

    async def stop(self) -> None:
        """Ended, whether it is still running or has ended by itself after its calls."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # exited, not yet reaped
                self.process.kill()
        await self.process.wait()

    def log(self) -> str:
        parts = []
        for path in (self.errors, self.messages):
            if path.exists():
                parts.append(path.read_text(errors="replace")[-6000:])
        return "\n".join(parts)

    def received(self, method: str) -> list[str]:
        """Messages SIPp received that start with ``method`` (from -trace_msg)."""
        text = self.messages.read_text(errors="replace") if self.messages.exists() else ""
        found = []
        for block in re.split(r"^-{20,}.*$", text, flags=re.M):
            head, _, message = block.strip("\n").partition("\n\n")
            if "message received" in head and message.startswith(method + " "):
                found.append(message)
        return found


async def start_sipp(
    tmp: Path,
    scenario: str | None,
    *,
    builtin: str | None = None,
    keys: dict[str, str] | None = None,
    rtp_echo: bool = False,
    calls: int = 1,
    extra: list[str] | None = None,
    fill: dict[str, str] | None = None,
    port: int | None = None,
) -> SippRun:
    """Start a SIPp UAS on loopback and wait until it listens.

    ``keys`` become SIPp ``-key`` fields; ``fill`` replaces ``__NAME__`` in the scenario text;
    ``port``: listen there (a peer that comes up where a worker already sends).
    """
    port = port or free_port()
    media_port = free_port(even=True)
    messages, errors = tmp / f"sipp-{port}-msg.log", tmp / f"sipp-{port}-err.log"
    args = ["sipp", "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1"]
    args += ["-mp", str(media_port), "-m", str(calls), "-nostdin", "-timeout", "30s"]
    args += ["-timeout_error", "-trace_msg", "-message_file", str(messages)]
    args += ["-trace_err", "-error_file", str(errors)]
    if builtin:
        args += ["-sn", builtin]
    else:
        path = SCENARIOS / f"{scenario}.xml"
        if fill:  # SIPp checks status codes at load time, so they cannot be -key fields
            text = path.read_text()
            for name, value in fill.items():
                text = text.replace(f"__{name}__", value)
            path = tmp / f"{scenario}-{port}.xml"
            path.write_text(text)
        args += ["-sf", str(path)]
    if rtp_echo:
        args.append("-rtp_echo")
    for key, value in (keys or {}).items():
        args += ["-key", key, value]
    args += extra or []
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=tmp,
    )
    run = SippRun(process, port, media_port, messages, errors)
    try:
        await wait_until(
            lambda: udp_bound(port) or process.returncode is not None, 10, "SIPp to listen"
        )
    except TimeoutError:
        process.kill()
        raise
    if process.returncode is not None:
        raise AssertionError(f"SIPp exited at start ({process.returncode}):\n{run.log()}")
    return run


class LossyRelay(asyncio.DatagramProtocol):
    """Forwards UDP between a client and a server, dropping the first INVITE it sees."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.client: tuple[str, int] | None = None
        self.dropped = 0
        self.invites = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if addr == self.server:
            if self.client is not None:
                self.transport.sendto(data, self.client)
            return
        self.client = addr
        if data.startswith(b"INVITE "):
            self.invites += 1
            if not self.dropped:
                self.dropped += 1
                return
        self.transport.sendto(data, self.server)


# --- audio ---


def tone(freq: float, seconds: float, amplitude: int = 8000) -> bytes:
    n = int(8000 * seconds)
    return array(
        "h", (int(amplitude * math.sin(2 * math.pi * freq * i / 8000)) for i in range(n))
    ).tobytes()


def write_wav(path: Path, pcm: bytes, channels: int = 1) -> Path:
    import wave

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(pcm)
    return path


def read_wav(path: Path) -> tuple[int, bytes]:
    import wave

    with wave.open(str(path), "rb") as wav:
        return wav.getnchannels(), wav.readframes(wav.getnframes())


def peak_frequency(pcm: bytes, rate: int = 8000) -> float:
    """The strongest frequency in ``pcm`` (16-bit mono), 0 for silence."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if len(samples) < 256 or not np.any(samples):
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def write_pcap(path: Path, packets: list[tuple[float, bytes]]) -> Path:
    """A pcap of RTP packets (time, RTP bytes) in UDP/IPv4; SIPp's play_pcap_audio reads it."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    loopback = socket.inet_aton("127.0.0.1")
    for t, data in packets:
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(data), 0) + data
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, loopback, loopback
        )
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        sec, usec = int(1_700_000_000 + t), round((t % 1) * 1e6)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def dtmf_packets(event: int, payload_type: int, ssrc: int = 7) -> list[tuple[float, bytes]]:
    """One RFC 4733 event: 5 updates then 3 end packets, all with one timestamp."""
    packets = []
    for i in range(8):
        end = i >= 5
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, 160 * min(i + 1, 6))
        marker = 0x80 if i == 0 else 0
        header = struct.pack("!BBHII", 0x80, marker | payload_type, 100 + i, 12345, ssrc)
        packets.append((i * 0.02, header + payload))
    return packets


def pcma_packets(pcm: bytes, ssrc: int = 9) -> list[tuple[float, bytes]]:
    from aiortp.codecs.g711 import PcmaCodec

    encoded = PcmaCodec().encode(pcm)
    return [
        (i * 0.02, struct.pack("!BBHII", 0x80, 8, i, i * 160, ssrc) + encoded[o : o + 160])
        for i, o in enumerate(range(0, len(encoded) - 159, 160))
    ]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
