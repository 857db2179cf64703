"""Benchmark: concurrent scripted conversations, the robot's response time to the client's answer.

For each level (default 25, 50, 100, 200) that many calls go from one worker (CallEngine and the
ScenarioRunner, prompts synthesised by espeak-ng and cached before dialling, as in a live call)
to a SIPp peer playing the client: it answers, waits, presses 9 (RFC 4733 events from the
``dtmf_2833_9.pcap`` SIPp ships) for the score question, then 1 ("yes") for the next one, and
waits for the robot's BYE. The robot's RTP goes to a sink in this process (the peer's SDP names
it) that notes, in its own thread, when each packet arrives. Measured per answer: from the moment
the worker had the client's key (the end of the answer) to the first packet of the robot's next
prompt (the first non-silent packet after it), and, inside it, from the key to the moment the
runner handed the prompt to the call (the rest is the media clock's next 20 ms tick and the
wait for a core). Printed: p50/p99/max per level, calls that did not go through, the curve.

The anchor, alternately with the worker (``--rounds`` rounds per level): SIPp to SIPp on the same
machine with the same number of concurrent calls, each caller sending its two answers as SIP
INFO and timing the callee's 200 (SIPp's response-time measurement): how fast a program that
only answers can respond to the client over the same loopback at the same level. Printed first:
the worker's p99 response time as a multiple of SIPp's p99, per level, and the machine's load.
SIPp reports whole milliseconds: an anchor of "0 ms" is counted as 1 ms, so the ratio is then a
lower bound.

Answers are keypad presses: no Russian speech model installs here, and a spoken answer's end is
decided by the end-of-answer rule (0.8 s of quiet, docs/voice.md), which is added to this time
by design. The goal (issue 14): p99 under 500 ms at 100 concurrent conversations.

    .venv/bin/python scripts/bench_conversations.py [--levels 25,50,100,200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import Comparison, LoadWatch, alternate_async, report_first

from povtor.domain import Purpose
from povtor.settings import CallSettings, Settings
from voice.call import Call
from voice.engine import CallEngine
from voice.scenario import Scenario
from voice.scenario_runner import ScenarioRunner, prepare_prompts
from voice.sip.trunks import TrunkConfig
from voice.synth import Synths

SIPP_SHARE = Path("/usr/share/sip-tester")
SCENARIO = Scenario.model_validate(
    {
        "purpose": Purpose.NPS,
        "start": "score",
        "disclosure": "",
        "steps": {
            "score": {
                "ask": "score",
                "say": "Оцените нас от нуля до десяти.",
                "retries": 0,
                "wait_s": 20,
                "next": "recommend",
            },
            "recommend": {
                "ask": "intent",
                "say": "Порекомендуете нас друзьям?",
                "keys": {"1": "yes", "2": "no"},
                "retries": 0,
                "wait_s": 20,
                "next": "bye",
            },
            "bye": {"say": "Спасибо! До свидания."},
        },
    }
)
SILENT_PCMU = 0xFF  # the robot's silence in G.711 mu-law

REPLY_200 = """  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
"""  # a 200 to the request just received

ANSWER_INVITE = """  <send retrans="500">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio __MEDIA__ RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
"""  # 200 with SDP: the robot's RTP to __MEDIA__

PEER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="client answering by keypad">
  <recv request="INVITE" />
__ANSWER_INVITE__
  <recv request="ACK" />
  <pause milliseconds="__FIRST__" />
  <nop><action><exec play_pcap_audio="__SHARE__/dtmf_2833_9.pcap" /></action></nop>
  <pause milliseconds="__SECOND__" />
  <nop><action><exec play_pcap_audio="__SHARE__/dtmf_2833_1.pcap" /></action></nop>
  <recv request="BYE" timeout="60000" />
__REPLY_200__
</scenario>
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _udp_bound(port: int) -> bool:
    hexport = f":{port:04X} "
    with open("/proc/net/udp", encoding="ascii") as table:
        return any(hexport in line[:30] for line in table)


async def _start(args: list[str], port: int, folder: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=folder,
    )  # fmt: skip
    end = time.monotonic() + 10
    while not _udp_bound(port):
        if process.returncode is not None or time.monotonic() > end:
            raise RuntimeError(f"SIPp did not start: {' '.join(args)}")
        await asyncio.sleep(0.02)
    return process


async def _finish(process: asyncio.subprocess.Process, wait_s: float) -> int:
    try:
        async with asyncio.timeout(wait_s):
            return await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1


class Sink:
    """Receives the robot's RTP in a thread: per source port, when each prompt packet came."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.port = int(self.sock.getsockname()[1])
        # robot port -> (arrival time, audible) of every packet
        self.packets: dict[int, list[tuple[float, bool]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtp-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            at = time.monotonic()
            audible = any(b != SILENT_PCMU for b in data[12:52])
            with self._lock:
                self.packets[addr[1]].append((at, audible))

    def next_prompt(self, port: int, after: float) -> float | None:
        """When the first audible packet after ``after`` came; None when the robot was still
        talking at ``after`` (the answer cut a prompt short) or said nothing after it."""
        with self._lock:
            packets = list(self.packets.get(port, ()))
        before = [audible for at, audible in packets if at <= after]
        if before and before[-1]:
            return None
        return next((at for at, audible in packets if at > after and audible), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@dataclass
class TimedCall:
    """The real call for the runner, noting when each key reached the worker."""

    call: Call
    keys_at: list[float] = field(default_factory=list)
    plays_at: list[float] = field(default_factory=list)  # when each prompt was handed over

    @property
    def uuid(self) -> str:
        return self.call.uuid

    async def play(self, audio: bytes | Path) -> bool:
        self.plays_at.append(time.monotonic())
        return await self.call.play(audio)

    def stop_playback(self) -> None:
        self.call.stop_playback()

    def frames(self) -> AsyncIterator[bytes]:
        return self.call.frames()

    async def keypresses(self) -> AsyncIterator[str]:
        async for digit in self.call.keypresses():
            self.keys_at.append(time.monotonic())
            yield digit


@dataclass
class Level:
    calls: int
    answered: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds
    handled: list[float] = field(default_factory=list)  # key to the prompt handed to the call
    missing: int = 0  # answers that came mid-prompt, or with no next prompt seen
    cpu_pct: float = 0.0
    scored: int = 0

    def p(self, q: float, values: list[float] | None = None) -> float:
        lat = sorted(self.latencies if values is None else values)
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")


async def run_worker(calls: int, folder: Path, synth: Any) -> Level:
    sink = Sink()
    sip_port = _free_port()
    ramp_s = calls / 100 + 1.0
    first_ms = int((ramp_s + 3.0) * 1000)  # every call up and its question being said
    peer = PEER.replace("__MEDIA__", str(sink.port)).replace("__SHARE__", str(SIPP_SHARE))
    peer = peer.replace("__FIRST__", str(first_ms)).replace("__SECOND__", "3500")
    (folder / "peer.xml").write_text(peer, encoding="utf-8")
    sipp = await _start(
        ["sipp", "-sf", "peer.xml", "-i", "127.0.0.1", "-p", str(sip_port),
         "-m", str(calls), "-nostdin", "-timeout", "120s", "-max_recv_loops", "10000"],
        sip_port, folder,
    )  # fmt: skip
    trunk = TrunkConfig(
        name="bench", proxy=f"127.0.0.1:{sip_port}", local_host="127.0.0.1", local_port=0,
        rtp_port_min=0, max_concurrent_calls=calls, calls_per_second=100, rtp_timeout_s=0,
        ring_timeout_s=30, symmetric_rtp=False,
    )  # fmt: skip
    level = Level(calls)
    me = psutil.Process()
    try:
        async with CallEngine({"bench": trunk}) as engine:
            placed = [
                await engine.start_call(f"sip:c{i}@127.0.0.1:{sip_port}") for i in range(calls)
            ]

            async def converse(call: Call) -> tuple[TimedCall, int, Any]:
                timed = TimedCall(call)
                if not await call.wait_answered():
                    return timed, 0, None
                port = call.stream.local_port
                runner = ScenarioRunner(SCENARIO, timed, synth, {})
                try:
                    result = await runner.run()
                finally:
                    await call.hangup()
                    await runner.close()
                return timed, port, result

            cpu0 = me.cpu_times()
            t0 = time.monotonic()
            done = await asyncio.gather(*(converse(c) for c in placed))
            cpu1 = me.cpu_times()
            wall = time.monotonic() - t0
    finally:
        code = await _finish(sipp, 30)
        sink.close()
    level.cpu_pct = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100
    for timed, port, result in done:
        if result is None:
            continue
        level.answered += 1
        level.scored += int(result.data.get("score") == 9 and result.data.get("intent") == "yes")
        for key_at in timed.keys_at:
            play_at = next((t for t in timed.plays_at if t >= key_at), None)
            if play_at is not None:
                level.handled.append(play_at - key_at)
            first = sink.next_prompt(port, key_at)
            if first is None:
                level.missing += 1
            else:
                level.latencies.append(first - key_at)
    if code != 0:
        print(f"  peer SIPp exit code {code} at {calls} calls", file=sys.stderr)
    return level


# -- the anchor: SIPp to SIPp, the callee's answer to the caller's INFO --------------------------


def _caller_request(method: str, seq: int, attrs: str = "", body: str = "") -> str:
    """A request of the anchor's caller on its dialog (the INVITE opens it)."""
    dialog = "" if method == "INVITE" else "[peer_tag_param]"
    extra = "Contact: <sip:caller@[local_ip]:[local_port]>\n" if method == "INVITE" else ""
    if body:
        extra += "Content-Type: application/dtmf-relay\n"
    length = "[len]" if body else "0"
    return f"""  <send{attrs}>
    <![CDATA[
{method} sip:callee@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:callee@[remote_ip]:[remote_port]>{dialog}
Call-ID: [call_id]
CSeq: {seq} {method}
Max-Forwards: 70
{extra}Content-Length: {length}

{body}
    ]]>
  </send>
"""


def anchor_caller(first_ms: int) -> str:
    """SIPp caller: INVITE, ACK, then after ``first_ms`` two INFO answers (their 200 timed,
    3.5 s apart as the worker's client answers), then BYE."""
    infos = "".join(
        _caller_request("INFO", n + 1, f' start_rtd="{n}"', f"Signal={digit}\nDuration=160")
        + f'  <recv response="200" rtd="{n}" />\n  <pause milliseconds="3500" />\n'
        for n, digit in ((1, "9"), (2, "1"))
    )
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
        '<scenario name="caller answering by INFO">\n'
        + _caller_request("INVITE", 1, ' retrans="500"')
        + '  <recv response="200" rrs="true" />\n'
        + _caller_request("ACK", 1)
        + f'  <pause milliseconds="{first_ms}" />\n'
        + infos
        + _caller_request("BYE", 4, ' retrans="500"')
        + '  <recv response="200" />\n</scenario>\n'
    )


ANCHOR_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callee answering INFO">
  <recv request="INVITE" />
__ANSWER_INVITE__
  <recv request="ACK" />
__ANSWERS__
  <recv request="BYE" />
__REPLY_200__
</scenario>
"""
ANSWER = """  <recv request="INFO" />
__REPLY_200__
"""
PEER, ANCHOR_UAS = (t.replace("__ANSWER_INVITE__\n", ANSWER_INVITE) for t in (PEER, ANCHOR_UAS))
PEER, ANCHOR_UAS, ANSWER = (
    t.replace("__REPLY_200__\n", REPLY_200) for t in (PEER, ANCHOR_UAS, ANSWER)
)


async def run_anchor(calls: int, folder: Path) -> list[float]:
    """SIPp calls SIPp; each caller sends two INFOs; the response times (seconds)."""
    ramp_s = calls / 100 + 1.0
    uac = anchor_caller(int(ramp_s * 1000))
    (folder / "uac.xml").write_text(uac, encoding="utf-8")
    uas_xml = ANCHOR_UAS.replace("__ANSWERS__", ANSWER * 2).replace("__MEDIA__", "9")
    (folder / "uas.xml").write_text(uas_xml, "utf-8")
    uas_port, uac_port = _free_port(), _free_port()
    uas = await _start(
        ["sipp", "-sf", "uas.xml", "-i", "127.0.0.1", "-p", str(uas_port), "-m", str(calls),
         "-nostdin", "-timeout", "120s"], uas_port, folder,
    )  # fmt: skip
    uac_proc = await _start(
        ["sipp", "-sf", "uac.xml", f"127.0.0.1:{uas_port}", "-i", "127.0.0.1",
         "-p", str(uac_port), "-m", str(calls), "-l", str(calls), "-r", "100", "-nostdin",
         "-timeout", "120s", "-trace_rtt", "-rtt_freq", "1"], uac_port, folder,
    )  # fmt: skip
    await _finish(uac_proc, 120)
    await _finish(uas, 30)
    return await asyncio.to_thread(_response_times, folder)


def _response_times(folder: Path) -> list[float]:
    """Seconds from SIPp's ``-trace_rtt`` files (Date_ms;response_time_ms;rtd_no)."""
    times: list[float] = []
    for path in folder.glob("*_rtt.csv"):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[1].strip():
                times.append(float(parts[1]) / 1000)
    return times


ANCHOR_RESOLUTION_S = 0.001  # SIPp reports response times in whole milliseconds


def p99(values: list[float]) -> float:
    lat = sorted(values)
    return lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")


async def compare(
    calls: int, rounds: int, load: LoadWatch, synth: Any
) -> tuple[Comparison, Level, float]:
    levels: list[Level] = []
    anchors: list[float] = []

    async def subject() -> float:
        with tempfile.TemporaryDirectory(prefix=f"bench-conv-{calls}-") as tmp:
            level = await run_worker(calls, Path(tmp), synth)
        levels.append(level)
        return p99(level.latencies)

    async def anchor() -> float:
        with tempfile.TemporaryDirectory(prefix=f"bench-conv-sipp-{calls}-") as tmp:
            times = await run_anchor(calls, Path(tmp))
        value = p99(times)
        anchors.append(value)
        return max(value, ANCHOR_RESOLUTION_S)  # "0 ms" is under a millisecond

    pairs = await alternate_async(anchor, subject, rounds, load)
    comparison = Comparison(
        f"worker p99 response, {calls} conversations",
        "SIPp callee's p99 answer to INFO",
        pairs,
        unit="s",
        goal="worker p99 < 0.5 s at 100" if calls == 100 else "",
    )
    timed = [lv for lv in levels if lv.latencies] or levels
    middle = statistics.median_low(p99(lv.latencies) for lv in timed)
    level = next((lv for lv in timed if p99(lv.latencies) == middle), timed[0])
    return comparison, level, statistics.median(anchors)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="25,50,100,200")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="bench-conv-data-")),
        call=CallSettings(tts_engine="espeak", live_asr=False),
    )
    synth = Synths(settings).for_speech(SCENARIO.speech)
    await prepare_prompts(SCENARIO, synth, {})  # cached, as before a live call is dialled
    load = LoadWatch()
    comparisons, rows = [], []
    for calls in (int(c) for c in args.levels.split(",")):
        comparison, level, anchor = await compare(calls, args.rounds, load, synth)
        comparisons.append(comparison)
        rows.append((level, anchor))
        print(f"{calls} conversations: p99 {level.p(0.99):.0f} ms", file=sys.stderr, flush=True)
    report_first(
        comparisons,
        load,
        [f"# {psutil.cpu_count()} cores, Python {sys.version.split()[0]}, keypad answers"],
    )
    print(
        "| conversations | answered | answers timed | no next prompt | p50 ms | p99 ms | max ms "
        "| key to prompt handed over p50 / p99 ms | worker CPU % | SIPp INFO p99 ms "
        "| right answers |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for level, anchor in rows:
        print(
            f"| {level.calls} | {level.answered} | {len(level.latencies)} | {level.missing} "
            f"| {level.p(0.5):.0f} | {level.p(0.99):.0f} | {level.p(1.0):.0f} "
            f"| {level.p(0.5, level.handled):.0f} / {level.p(0.99, level.handled):.0f} "
            f"| {level.cpu_pct:.0f} | {anchor * 1000:.1f} | {level.scored} |"
        )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
