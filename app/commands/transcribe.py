"""``povtor transcribe``: transcribe audio files and folders into the history store.

With ``--json`` stdout carries exactly one JSON object per file per line; progress and messages go
to stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from voice.decode import Detector


class Vad(StrEnum):
    energy = "energy"
    silero = "silero"


def transcript_line(result: Any) -> dict[str, Any]:
    """The ``--json`` object for one file (the contract of issue 5)."""
    transcript = result.transcript
    line: dict[str, Any] = {
        "file": str(result.path),
        "duration_s": transcript.duration_s if transcript else 0.0,
        "text": transcript.text if transcript else "",
        "segments": [
            {"start": s.start, "end": s.end, "speaker": s.speaker, "text": s.text}
            for s in (transcript.segments if transcript else ())
        ],
    }
    if result.error is not None:
        line["error"] = result.error
    return line


def transcribe(
    inputs: list[Path] = typer.Argument(
        ..., help="Audio files and folders (searched recursively)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model folder or installed name (default: POVTOR_ASR_MODEL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file per line."),
    skip_robot: bool = typer.Option(
        False, "--skip-robot", help="Stereo calls: do not decode the robot's (left) channel."
    ),
    no_vad: bool = typer.Option(False, "--no-vad", help="Decode silence too (slower)."),
    vad: Vad | None = typer.Option(
        None, "--vad", help="Which detector finds the speech (default: POVTOR_ASR_VAD)."
    ),
    workers: int = typer.Option(0, help="Processes (default: POVTOR_ASR_WORKERS, else cores)."),
) -> None:
    """Transcribe audio (any format ffmpeg reads); stereo calls become a robot/client dialogue."""
    detector: Detector | None = vad.value if vad else None
    code = asyncio.run(_transcribe(inputs, model, as_json, skip_robot, no_vad, detector, workers))
    raise typer.Exit(code)


async def _transcribe(
    inputs: list[Path],
    model: str | None,
    as_json: bool,
    skip_robot: bool,
    no_vad: bool,
    detector: Detector | None,
    workers: int,
) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from app.commands.database import open_engine
    from povtor.errors import ModelError, StoreError
    from povtor.settings import Settings
    from voice.asr_batch import Batch, FileResult, collect_files, start_pool
    from voice.decode import options_from_settings
    from voice.models import resolve_model
    from voice.transcribe import start_loading
    from voice.transcripts import TranscriptStore

    settings = Settings()
    console = Console(stderr=True)
    try:
        model_path = resolve_model(model or settings.asr.model, settings.models_dir)
    except ModelError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    files = collect_files(inputs)
    if not files:
        console.print("[yellow]no audio files found[/yellow]")
        return 0
    # the model loads while the store opens and the files are hashed; when every file turns out
    # to be done already the load was for nothing, which a rerun of a whole folder can afford
    start_loading(model_path, settings.asr.allocator)
    options = options_from_settings(
        settings.asr, vad=not no_vad, detector=detector, skip_robot=skip_robot or None
    )
    async with open_engine(settings) as engine:
        batch = Batch(
            TranscriptStore(engine),
            lambda: start_pool(
                model_path, workers or settings.asr.workers, options, settings.asr.allocator
            ),
            options=options,
            model_name=model_path.name if model_path.name != "model" else str(model_path),
        )
        failed = 0
        try:
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                disable=not console.is_terminal,
            ) as progress:
                task = progress.add_task("transcribing", total=len(files))

                def report(result: FileResult) -> None:
                    nonlocal failed
                    progress.advance(task)
                    if result.error is not None:
                        failed += 1
                    if as_json:
                        sys.stdout.write(
                            json.dumps(transcript_line(result), ensure_ascii=False) + "\n"
                        )
                        sys.stdout.flush()
                    elif result.error is not None:
                        console.print(f"[red]failed[/red] {result.path}: {result.error}")
                    elif result.transcript is not None:
                        _print_dialogue(result, console)

                summary = await batch.run(files, report)
        except (ModelError, StoreError) as err:
            console.print(f"[red]error:[/red] {err}")
            return 2
        finally:
            await batch.close()
    console.print(
        f"{summary.done} transcribed, {summary.skipped} already done, {summary.failed} failed "
        f"({summary.audio_s:.0f} s of audio)"
    )
    return 1 if failed else 0


def _print_dialogue(result: Any, console: Any) -> None:
    out = sys.stdout
    note = " (already done)" if result.skipped else ""
    out.write(f"== {result.path} ({result.transcript.duration_s:.1f} s){note}\n")
    for segment in result.transcript.segments:
        out.write(f"[{segment.start:7.2f}-{segment.end:7.2f}] {segment.speaker}: {segment.text}\n")
    out.flush()
