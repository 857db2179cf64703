"""Benchmark: concurrent recorded calls from one worker to SIPp (``-rtp_echo``) on loopback.

For each load (default 50, 100, 200, 400 calls) every call is placed, answered, plays a tone
for ``--hold`` seconds while SIPp echoes the RTP back and the call is recorded (stereo WAV),
then hangs up. Measured while all calls are up: calls held, CPU of this worker and of SIPp,
worker memory, p50/p99 lateness of outgoing RTP frames against their 20 ms schedule,
echoed packets lost, failed calls.

The anchor, alternately with the worker for ``--rounds`` rounds per load: SIPp to SIPp on the
same machine, a SIPp caller (the stock ``uac_pcap`` scenario, its G.711 pcap played over and
over for the hold) placing the same number of calls to the same echoing SIPp. Compared: the
caller's CPU per held call over the same hold window. Printed first: the worker's CPU per call as
a multiple of the SIPp caller's (median of the rounds) per load, and the machine's load; then the
table (the median round per load).

The worker runs on the event loop ``povtor run`` uses (uvloop where installed); ``--loop asyncio``
measures it on asyncio's own selector loop.

    .venv/bin/python scripts/bench_calls.py [--calls 50,100,200,400] [--hold 10] [--rounds 3]
        [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (
    Comparison,
    LoadWatch,
    add_loop_option,
    alternate_async,
    report_first,
)

from app import event_loop
from povtor.domain import OutcomeKind
from voice.call import Call
from voice.engine import CallEngine
from voice.recording import CallRecorder, RecordingWriter
from voice.sip.trunks import TrunkConfig


@dataclass
class Row:
    calls: int
    held: int
    failed: int
    cpu_worker: float
    cpu_sipp: float
    rss_mb: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    sent: int
    slips: int
    cpu_wait: float = 0.0  # share of the hold the event loop's thread was runnable but not running


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tone(seconds: float) -> bytes:
    n = int(8000 * seconds)
    return array(
        "h", (int(6000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(n))
    ).tobytes()


def _udp_bound(port: int) -> bool:
    hexport = f":{port:04X} "
    with open("/proc/net/udp", encoding="ascii") as table:
        return any(hexport in line[:30] for line in table)


async def _wait_bound(port: int, process: asyncio.subprocess.Process) -> None:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if process.returncode is not None:
            raise RuntimeError("SIPp exited at start")
        if _udp_bound(port):
            return
        await asyncio.sleep(0.02)
    raise RuntimeError("SIPp did not start")


def _waited_for_cpu() -> float:
    """Seconds this thread (the event loop's) has been runnable but waiting for a CPU
    (``/proc/.../schedstat``): the part of the lateness the machine's load causes."""
    path = f"/proc/self/task/{threading.get_native_id()}/schedstat"
    try:
        with open(path, encoding="ascii") as stat:
            return int(stat.read().split()[1]) / 1e9
    except OSError:
        return 0.0


async def run_load(calls: int, hold: float, folder: Path) -> Row:
    sip_port, media_port = _free_port(), 0
    while media_port % 2 or media_port == 0:
        media_port = _free_port()
    sipp = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(sip_port), "-mi", "127.0.0.1",
        "-mp", str(media_port), "-rtp_echo", "-m", str(calls), "-nostdin",
        "-timeout", f"{int(hold * 4 + 60)}s", "-max_recv_loops", "10000",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=folder,
    )  # fmt: skip
    await _wait_bound(sip_port, sipp)
    trunk = TrunkConfig(
        name="bench",
        proxy=f"127.0.0.1:{sip_port}",
        local_host="127.0.0.1",
        local_port=0,
        rtp_port_min=0,
        max_concurrent_calls=calls,
        calls_per_second=200,
        rtp_timeout_s=0,
        ring_timeout_s=30,
    )
    prompt = _tone(hold + 5)
    me = psutil.Process()
    sipp_ps = psutil.Process(sipp.pid)
    with RecordingWriter(threads=2) as writer:

        def recorder(call_uuid: str) -> CallRecorder:
            return CallRecorder.open(folder, call_uuid, writer=writer)

        async with CallEngine({"bench": trunk}, recorder_factory=recorder) as engine:
            placed: list[Call] = []
            for _ in range(calls):
                placed.append(await engine.start_call(f"sip:echo@127.0.0.1:{sip_port}"))
            answered = await asyncio.gather(*(c.wait_answered() for c in placed))
            players = [
                asyncio.ensure_future(c.play(prompt))
                for c, ok in zip(placed, answered, strict=True)
                if ok
            ]
            held = sum(1 for c in placed if c.answered and not c.ended)
            await asyncio.sleep(1.0)  # let every stream settle into the clock before measuring
            engine.clock.stats.reset()
            cpu0, sipp0, t0 = me.cpu_times(), sipp_ps.cpu_times(), time.monotonic()
            wait0 = _waited_for_cpu()
            await asyncio.sleep(hold)
            cpu1, sipp1, t1 = me.cpu_times(), sipp_ps.cpu_times(), time.monotonic()
            cpu_wait = (_waited_for_cpu() - wait0) / (t1 - t0)
            rss = me.memory_info().rss / 2**20
            held = min(held, sum(1 for c in placed if c.answered and not c.ended))
            stats = engine.clock.stats
            p50, p99, top = stats.percentile(0.5), stats.percentile(0.99), stats.percentile(1.0)
            slips = stats.slips
            results = await asyncio.gather(*(c.hangup() for c in placed))
            for player in players:
                player.cancel()
    try:
        async with asyncio.timeout(15):
            await sipp.wait()
    except TimeoutError:
        sipp.kill()
        await sipp.wait()
    wall = t1 - t0
    worker_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100
    sipp_cpu = (sipp1.user + sipp1.system - sipp0.user - sipp0.system) / wall * 100
    failed = sum(1 for r in results if r.outcome is not OutcomeKind.ANSWERED)
    failed += sum(1 for r in results if r.recording is None)
    for r in results:
        if r.outcome is not OutcomeKind.ANSWERED or r.recording is None:
            print(
                f"    failed call: {r.outcome.value} {r.sip_code} {r.reason!r}, "
                f"recording {'kept' if r.recording is not None else 'missing'}",
                file=sys.stderr,
            )
    return Row(
        calls=calls,
        held=held,
        failed=failed,
        cpu_worker=worker_cpu,
        cpu_sipp=sipp_cpu,
        rss_mb=rss,
        p50_ms=p50,
        p99_ms=p99,
        max_ms=top,
        lost=sum(r.packets_lost for r in results),
        sent=sum(r.packets_sent for r in results),
        slips=slips,
        cpu_wait=cpu_wait,
    )


# -- the anchor: SIPp calling SIPp ---------------------------------------------------------------

PCAP = Path("/usr/share/sip-tester/g711a.pcap")  # shipped with SIPp (Debian sip-tester)


def pcap_seconds(path: Path) -> float:
    """Duration of a pcap file: last packet's timestamp minus the first's."""
    data = path.read_bytes()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    stamps, at = [], 24
    while at + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from(f"{endian}IIII", data, at)
        stamps.append(sec + usec / 1e6)
        at += 16 + incl
    return stamps[-1] - stamps[0]


def caller_scenario(pcap: Path, seconds: float) -> str:
    """SIPp's stock ``uac_pcap`` scenario with its media part replaced: ``pcap`` played over and
    over for ``seconds``, then BYE."""
    # sipp -sd prints the scenario and exits with 99
    stock = subprocess.run(["sipp", "-sd", "uac_pcap"], capture_output=True, text=True).stdout
    if "<?xml" not in stock:
        raise SystemExit("sipp -sd uac_pcap printed no scenario: is SIPp 3.x installed?")
    stock = stock[stock.index("<?xml") :]
    length = pcap_seconds(pcap)
    media = []
    left = seconds
    while left > 0:
        pause = min(left, length)
        media.append(
            f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
            f'<pause milliseconds="{int(pause * 1000)}"/>\n'
        )
        left -= pause
    return re.sub(
        r"<!-- Play a pre-recorded.*?(?=<!-- The 'crlf' option)",
        lambda _: "".join(media),
        stock,
        flags=re.S,
    )


async def run_anchor(calls: int, hold: float, folder: Path) -> tuple[float, int, int]:
    """SIPp calls SIPp: the caller's CPU % over the hold window, calls held, calls failed."""
    sip_port, media_port = _free_port(), 0
    while media_port % 2 or media_port == 0:
        media_port = _free_port()
    ramp = calls / 200 + 2.0  # calls placed at 200/s, as the worker's trunk allows
    uas = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(sip_port), "-mi", "127.0.0.1",
        "-mp", str(media_port), "-rtp_echo", "-m", str(calls), "-nostdin",
        "-timeout", f"{int(hold * 4 + 60)}s", "-max_recv_loops", "10000",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=folder,
    )  # fmt: skip
    await _wait_bound(sip_port, uas)
    scenario = folder / "caller.xml"
    scenario.write_text(caller_scenario(PCAP, ramp + hold + 1.0), encoding="utf-8")
    uac_port = _free_port()
    uac = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(scenario), f"127.0.0.1:{sip_port}", "-i", "127.0.0.1",
        "-p", str(uac_port), "-mi", "127.0.0.1", "-m", str(calls), "-l", str(calls),
        "-r", "200", "-nostdin", "-timeout", f"{int(hold * 4 + 60)}s",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=folder,
    )  # fmt: skip
    uac_ps = psutil.Process(uac.pid)
    await asyncio.sleep(ramp)  # every call up (the scenario holds each for ramp + hold + 1 s)
    cpu0, t0 = uac_ps.cpu_times(), time.monotonic()
    await asyncio.sleep(hold)
    cpu1, t1 = uac_ps.cpu_times(), time.monotonic()
    try:
        async with asyncio.timeout(hold * 4 + 60):
            code = await uac.wait()
            await uas.wait()
    except TimeoutError:
        for proc in (uac, uas):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        code = -1
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0) * 100
    failed = 0 if code == 0 else calls  # SIPp exits 0 only when every call succeeded
    return cpu, calls - failed, failed


def print_table(rows: list[Row]) -> None:
    print(
        "| calls | held | failed | worker CPU % | SIPp CPU % | worker RSS MB "
        "| p50 late ms | p99 late ms | max late ms | echo lost / sent | clock slips |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.calls} | {r.held} | {r.failed} | {r.cpu_worker:.0f} | {r.cpu_sipp:.0f} "
            f"| {r.rss_mb:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} "
            f"| {r.lost} / {r.sent} | {r.slips} |"
        )
    for r in rows:
        print(
            f"# {r.calls} calls: the event loop's thread waited for a CPU "
            f"{r.cpu_wait * 100:.0f}% of the hold"
        )


async def compare(calls: int, hold: float, rounds: int, load: LoadWatch) -> tuple[Comparison, Row]:
    """The worker against SIPp calling SIPp, alternately; the median round's row."""
    rows: list[Row] = []

    async def in_folder(kind: str, run):  # type: ignore[no-untyped-def]
        folder = Path(tempfile.mkdtemp(prefix=f"bench-calls-{kind}-{calls}-"))
        try:
            return await run(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def subject() -> float:
        row = await in_folder("worker", lambda f: run_load(calls, hold, f))
        rows.append(row)
        print(
            f"    worker: {row.held} held, {row.failed} failed, lateness p50 {row.p50_ms:.1f} / "
            f"p99 {row.p99_ms:.1f} / max {row.max_ms:.1f} ms, CPU {row.cpu_worker:.0f}%, "
            f"waited for a CPU {row.cpu_wait * 100:.0f}% of the hold",
            file=sys.stderr,
        )
        return row.cpu_worker / max(row.held, 1)  # CPU % of one core per held call

    async def anchor() -> float:
        cpu, held, failed = await in_folder("sipp", lambda f: run_anchor(calls, hold, f))
        if failed:
            print(f"SIPp to SIPp: {failed} of {calls} calls failed", file=sys.stderr)
        return cpu / max(held, 1)

    pairs = await alternate_async(anchor, subject, rounds, load)
    comparison = Comparison(
        f"worker CPU per call, {calls} calls", "SIPp caller's", pairs, unit="CPU % per call"
    )
    middle = statistics.median_low(r.p99_ms for r in rows)
    row = next(r for r in rows if r.p99_ms == middle)
    print(f"{calls} calls done: p99 {row.p99_ms:.1f} ms, failed {row.failed}", file=sys.stderr)
    return comparison, row


async def main(args: argparse.Namespace) -> None:
    # as `povtor run` does once started (app/runtime.py): what start-up built is out of the
    # collector's sight, so a full collection walks only what the calls allocate
    gc.freeze()
    load = LoadWatch()
    comparisons, rows = [], []
    for calls in (int(c) for c in args.calls.split(",")):
        comparison, row = await compare(calls, args.hold, args.rounds, load)
        comparisons.append(comparison)
        rows.append(row)
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    report_first(
        comparisons,
        load,
        [
            f"# {psutil.cpu_count()} cores, Python {sys.version.split()[0]}, hold {args.hold} s, "
            f"event loop {loop}"
        ],
    )
    print_table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="50,100,200,400")
    parser.add_argument("--hold", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="anchor/worker rounds per load")
    add_loop_option(parser, "worker")
    parsed = parser.parse_args()
    event_loop.run(main(parsed), parsed.loop)
