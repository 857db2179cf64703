"""Measure answering-machine detection (``voice.amd``) on the synthetic set of people and
voicemails (``tests/integration/scenario/amd_set.py``: espeak-ng voices, two paces, three line
noise levels; people say "Алло?"-like greetings once or twice and then listen, machines play
5-20 s greetings with and without a beep).

Prints first the precision of "machine" (a person taken for a machine is hung up on: it must stay
at or above 0.98), then recall, how people were called, when machines were recognised, and the
detector's cost per second of audio.

Run from the repository root: ``.venv/bin/python scripts/bench_amd.py``.
"""

from __future__ import annotations

import collections
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.scenario.amd_set import build_sync  # noqa: E402
from voice.amd import Verdict, detect  # noqa: E402


def main() -> None:
    clips = build_sync()
    started = time.perf_counter()
    results = [(clip, detect(clip.pcm)) for clip in clips]
    cost = time.perf_counter() - started
    audio_s = sum(len(clip.pcm) / 16000 for clip in clips)
    tp = sum(c.machine and d.verdict is Verdict.MACHINE for c, d in results)
    fp = sum(not c.machine and d.verdict is Verdict.MACHINE for c, d in results)
    machines = sum(c.machine for c in clips)
    people = len(clips) - machines
    precision = tp / (tp + fp) if tp + fp else 0.0
    print(f"precision of 'machine' {precision:.3f} (people hung up on: {fp} of {people})")
    print(f"recall {tp / machines:.3f} ({tp} of {machines} machines recognised)")
    said = collections.Counter(d.verdict.value for c, d in results if not c.machine)
    print(f"people called: {dict(said)}")
    when = [d.at_s for c, d in results if c.machine and d.verdict is Verdict.MACHINE]
    print(f"machines recognised after {statistics.median(when):.1f} s (median), "
          f"{max(when):.1f} s (max)")  # fmt: skip
    missed = collections.Counter(
        c.name.split(":")[4] + "/" + c.name.split(":")[5]
        for c, d in results
        if c.machine and d.verdict is not Verdict.MACHINE
    )
    print(f"machines missed by beep/noise dBFS: {dict(missed)}")
    print(f"{len(clips)} clips, {audio_s:.0f} s of audio; detector {cost / audio_s * 1000:.2f} ms "
          "per second of audio")  # fmt: skip


if __name__ == "__main__":
    main()
