"""Run as a script by the kill test: records TICKS ticks, says so on stdout, then hangs.

Usage: python killed_writer.py FOLDER CALL_UUID TICKS
After the announced ticks it writes a few more that stay in the memory buffer (not flushed),
as a worker does mid-call, and waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.unit.recording.frames import client_frame, robot_frame
from voice.recording import CallRecorder, RecordingWriter


async def main(folder: Path, call_uuid: str, ticks: int) -> None:
    writer = RecordingWriter(threads=1)
    recorder = CallRecorder.open(folder, call_uuid, writer=writer, flush_interval_s=0.2)
    for n in range(ticks):
        recorder.write_tick(robot_frame(n), client_frame(n))
    await recorder.drain()
    for n in range(ticks, ticks + 3):  # buffered only: lost when the process is killed
        recorder.write_tick(robot_frame(n), client_frame(n))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.to_thread(sys.stdin.read)  # the test kills us before this returns


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
