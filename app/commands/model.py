"""``povtor model fetch|list``: download and show speech models (Vosk) and voices (Piper)."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(
    help="Speech models: recognition (Vosk) and voices (Piper).", no_args_is_help=True
)


@app.command("fetch")
def fetch(
    name: str = typer.Argument(
        ..., help="ru-small, ru, ... or a full vosk-model-... name; ru_RU-irina-medium... (voices)"
    ),
    force: bool = typer.Option(False, "--force", help="Replace an installed model."),
    retries: int = typer.Option(5, help="Resume this many times after a dropped connection."),
) -> None:
    """Download a model into DATA_DIR/models/NAME or a Piper voice into DATA_DIR/voices/NAME
    (resumable, checked, installed atomically)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from povtor.errors import ModelError
    from povtor.settings import Settings
    from voice.model_fetch import fetch_model
    from voice.models import spec_for
    from voice.piper_voices import fetch_voice, voice_spec_for

    settings = Settings()
    console = Console(stderr=True)
    try:
        voice = voice_spec_for(name)
        spec = spec_for(name) if voice is None else None
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(spec.archive if spec else name, total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            if voice is not None:
                fetching = fetch_voice(
                    voice,
                    settings.voices_dir,
                    settings.call.piper_base_url,
                    progress=progress,
                    retries=retries,
                    force=force,
                )
            else:
                assert spec is not None
                fetching = fetch_model(
                    spec,
                    settings.models_dir,
                    settings.asr.model_base_url,
                    progress=progress,
                    retries=retries,
                    force=force,
                )
            result = asyncio.run(fetching)
    except ModelError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from err
    checked = ", ".join(result.checked) or "nothing (no size or checksum known)"
    resumed = f", resumed at {result.resumed_from} bytes" if result.resumed_from else ""
    console.print(f"installed {result.name} in {result.path} (checked: {checked}{resumed})")
    console.print(f"sha256 {result.sha256}")


@app.command("list")
def list_models() -> None:
    """Show installed models (DATA_DIR/models, vosk-model-* packages) and Piper voices."""
    from rich.console import Console
    from rich.table import Table

    from povtor.settings import Settings
    from voice.models import KNOWN_MODELS, installed_models
    from voice.piper_voices import KNOWN_VOICES, installed_voices

    settings = Settings()
    installed = installed_models(settings.models_dir)
    table = Table("name", "size", "source", "path")
    for model in installed:
        table.add_row(
            model.name, f"{model.size_bytes / 1e6:.0f} MB", model.source, str(model.path)
        )
    console = Console()
    if installed:
        console.print(table)
    else:
        console.print(f"no models installed in {settings.models_dir}")
    missing = [n for n in KNOWN_MODELS if n not in {m.name for m in installed}]
    if missing:
        console.print(f"fetchable: {', '.join(missing)} (povtor model fetch NAME)")
    console.print(f"selected (POVTOR_ASR_MODEL): {settings.asr.model}")
    voices = installed_voices(settings.voices_dir)
    table = Table("voice", "size", "source", "path")
    for found in voices:
        size = found.model.stat().st_size
        table.add_row(found.name, f"{size / 1e6:.0f} MB", found.source, str(found.model))
    if voices:
        console.print(table)
    else:
        console.print(f"no Piper voices installed in {settings.voices_dir}")
    missing = [n for n in KNOWN_VOICES if n not in {v.name for v in voices}]
    if missing:
        console.print(f"fetchable voices: {', '.join(missing)} (povtor model fetch NAME)")
    engine = settings.call.tts_engine
    console.print(f"speech (POVTOR_CALL_TTS_ENGINE): {engine}, voice {settings.call.piper_voice}")
