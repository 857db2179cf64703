"""``povtor scenario check|render|try``: a manager checks, hears and walks a call script
before any client does. The composition root passes how to build the history store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from povtor.ports import HistoryStore

    StoreFactory = Callable[[async_sessionmaker[AsyncSession]], HistoryStore]


def make_app(store_factory: StoreFactory) -> typer.Typer:
    app = typer.Typer(help="Call scripts: check, render to WAV, try in the terminal.")

    @app.command("check")
    def check(
        files: list[Path] = typer.Argument(..., help="Scenario YAML files"),
        strict: bool = typer.Option(False, "--strict", help="Fail on warnings too."),
    ) -> None:
        """Report every problem of the scripts as FILE:LINE: level: message."""
        from povtor.settings import Settings
        from voice.scenario_check import check_file

        disclosure = Settings().call.disclosure
        failed = False
        for path in files:
            found = check_file(path, disclosure)
            for problem in found:
                typer.echo(str(problem))
            errors = sum(p.level == "error" for p in found)
            warnings = len(found) - errors
            failed = failed or bool(errors) or (strict and bool(warnings))
            if not found:
                typer.echo(f"{path}: ok")
        raise typer.Exit(1 if failed else 0)

    @app.command("render")
    def render_command(
        file: Path = typer.Argument(..., help="Scenario YAML file"),
        out: Path = typer.Option(..., "--out", help="Folder for the WAV files"),
        client: int | None = typer.Option(None, "--client", help="Client id (else sample)"),
        engine: str | None = typer.Option(None, "--engine", help="piper or espeak"),
        voice: str | None = typer.Option(None, "--voice", help="Voice name or .onnx path"),
    ) -> None:
        """Write every prompt a client may hear as OUT/<prompt>.wav (8 kHz mono)."""
        from povtor.errors import PovtorError

        try:
            rendered = asyncio.run(_render(store_factory, file, out, client, engine, voice))
        except PovtorError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from err
        for name, seconds, source, text in rendered:
            typer.echo(f"{name + '.wav':24} {seconds:5.1f} s  {source:8}  {text}")

    @app.command("try")
    def try_command(
        file: Path = typer.Argument(..., help="Scenario YAML file"),
        client: int | None = typer.Option(None, "--client", help="Client id (else sample)"),
    ) -> None:
        """Talk to the script: type what the client says, digits for keys, empty for silence,
        /hangup to hang up."""
        from povtor.errors import PovtorError
        from voice.scenario_try import walk

        try:
            scenario, values = asyncio.run(_load(store_factory, file, client))
        except PovtorError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from err

        def say(name: str, text: str) -> None:
            typer.echo(f"робот [{name}]: {text}")

        def hear(name: str) -> str | None:
            try:
                return input("клиент> ")
            except EOFError:
                return None

        result = walk(scenario, values, say, hear)
        typer.echo(f"-- finished: {result.finished}; learnt: {result.data}")

    return app


async def _load(store_factory: StoreFactory, file: Path, client_id: int | None) -> Any:
    from povtor.settings import Settings
    from voice.call_channel import template_values
    from voice.scenario import TEMPLATE_VALUES, load_scenario

    settings = Settings()
    scenario = load_scenario(file, settings.call.disclosure)
    if client_id is None:
        return scenario, dict(TEMPLATE_VALUES)
    from povtor.db import create_engine, session_factory

    engine = create_engine(settings.db_url)
    try:
        store = store_factory(session_factory(engine))
        client = await store.get_client(client_id)
        company = settings.call.company_name or settings.telegram.company_name
        values = await template_values(scenario.purpose, client, company, store)
    finally:
        await engine.dispose()
    return scenario, values


async def _render(
    store_factory: StoreFactory,
    file: Path,
    out: Path,
    client_id: int | None,
    engine: str | None,
    voice: str | None,
) -> list[tuple[str, float, str, str]]:
    import shutil

    from povtor.settings import Settings
    from voice.scenario_runner import prompt_texts
    from voice.synth import Synths
    from voice.tts import write_wav

    scenario, values = await _load(store_factory, file, client_id)
    speech = scenario.speech.model_copy(
        update={k: v for k, v in (("engine", engine), ("voice", voice)) if v is not None}
    )
    synth = Synths(Settings()).for_speech(speech)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    done = []
    for name, text in prompt_texts(scenario, values).items():
        target = out / f"{name}.wav"
        step = scenario.steps.get(name.removesuffix(".retry"))
        own = None
        if step is not None:
            own = step.retry_audio if name.endswith(".retry") else step.audio
        recorded = scenario.audio_path(own) if own is not None else scenario.recorded(name)
        if recorded is not None:
            await asyncio.to_thread(shutil.copyfile, recorded, target)
            seconds = max(0, recorded.stat().st_size - 44) / 16000
            done.append((name, seconds, "recorded", text))
            continue
        pcm = await synth.synth(text)
        await asyncio.to_thread(write_wav, target, pcm)
        done.append((name, len(pcm) / 16000, type(synth).__name__.removesuffix("Synth"), text))
    return done
