"""The ``povtor`` command line. Each subsystem contributes its commands here."""

from __future__ import annotations

from typing import Any

import typer

from app import client_links
from app.db_cli import db_app
from app.demo.cli import demo as demo_command
from app.sandbox.cli import sandbox as sandbox_command
from bot import cli as bot_cli
from crm_sync import crm_cli
from crm_sync.cli import client_app, demo_data_command, import_app, report_command
from dashboard import cli as dashboard_cli
from nlu.cli import app as nlu_app
from outreach import cli as outreach_cli
from povtor import __version__
from povtor.errors import AlreadyRunning, ConfigError, PovtorError, StoreError
from voice import call_cli as voice_call_cli
from voice import model_cli as voice_model_cli
from voice import recordings_cli as voice_recordings_cli
from voice import scenario_cli as voice_scenario_cli
from voice import transcribe_cli as voice_transcribe_cli

app = typer.Typer(
    name="povtor",
    help="Povtor: self-hosted repeat-sales automation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Povtor: self-hosted repeat-sales automation."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(client_app, name="client")


def _history_store(sessions: Any) -> Any:
    from crm_sync.store import SqlHistoryStore

    return SqlHistoryStore(sessions)


client_app.command("link")(bot_cli.link_command(_history_store))
client_app.command("links")(client_links.links)
app.add_typer(bot_cli.manager_app, name="manager")
app.command("report")(report_command)
app.command("demo-data")(demo_data_command)
app.command("demo")(demo_command)
app.command("sandbox")(sandbox_command)
app.add_typer(nlu_app, name="nlu")
app.add_typer(voice_model_cli.app, name="model")
app.command("transcribe")(voice_transcribe_cli.transcribe)
app.command("call")(voice_call_cli.call)
app.add_typer(voice_recordings_cli.app, name="recordings")
# call scripts: check (file:line problems), render (a WAV per prompt), try (typed answers)
app.add_typer(voice_scenario_cli.make_app(_history_store), name="scenario")
app.add_typer(dashboard_cli.app, name="user")
app.add_typer(crm_cli.app, name="crm")


_outreach = outreach_cli.Commands(
    outreach_cli.Wiring(
        planning_source=lambda sessions: _runtime().planning_source(sessions),
        history_store=lambda sessions: _runtime().history_store(sessions),
    )
)
app.command("plan")(_outreach.plan)
app.command("attempts")(_outreach.attempts)


def _runtime() -> Any:
    import app.runtime

    return app.runtime


@app.command("run")
def run_command(
    duration: float | None = typer.Option(
        None, "--duration", min=0, help="Stop (draining in-flight work) after this many seconds."
    ),
) -> None:
    """Run the worker: planner, dispatcher, bot, calls, transcription, dashboard."""
    from app.runtime import main as run_worker
    from povtor.logs import setup_logging
    from povtor.settings import Settings

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format, settings.log_library_level)
    try:
        run_worker(settings, duration_s=duration)
    except (AlreadyRunning, ConfigError, StoreError, BaseExceptionGroup) as err:  # at start
        refusal = _start_refusal(err)
        if refusal is None:
            raise
        typer.echo(f"povtor run: {refusal}", err=True)
        raise typer.Exit(3 if isinstance(refusal, AlreadyRunning) else 2) from None


def _start_refusal(err: BaseException) -> PovtorError | None:
    """Another worker holds the database, settings cannot work (a CRM without its URL, a taken
    port) or the database cannot be used: the one error inside ``err`` (task groups wrap it),
    else None."""
    if isinstance(err, AlreadyRunning | ConfigError | StoreError):
        return err
    if isinstance(err, BaseExceptionGroup) and len(err.exceptions) == 1:
        return _start_refusal(err.exceptions[0])
    return None


def main() -> None:
    app()
