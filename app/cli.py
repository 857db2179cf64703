"""The ``povtor`` command line. Each subsystem contributes its commands here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from app.commands import call as call_cmd
from app.commands import client_links as client_links_cmd
from app.commands import crm as crm_cmd
from app.commands import erase as erase_cmd
from app.commands import links as links_cmd
from app.commands import model as model_cmd
from app.commands import outreach as outreach_cmd
from app.commands import recordings as recordings_cmd
from app.commands import scenario as scenario_cmd
from app.commands import transcribe as transcribe_cmd
from app.commands import users as users_cmd
from app.commands.db import db_app
from app.commands.history import client_app, demo_data_command, import_app, report_command
from app.commands.nlu import app as nlu_app
from app.demo.cli import demo as demo_command
from app.sandbox.cli import sandbox as sandbox_command
from povtor import __version__
from povtor.errors import AlreadyRunning, ConfigError, PovtorError, StoreError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from povtor.ports import HistoryStore, PlanningSource

    Sessions = async_sessionmaker[AsyncSession]

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


def _history_store(sessions: Sessions) -> HistoryStore:
    from crm_sync.history.store import SqlHistoryStore

    return SqlHistoryStore(sessions)


def _planning_source(sessions: Sessions) -> PlanningSource:
    from crm_sync.history.planning_source import SqlPlanningSource

    return SqlPlanningSource(sessions)


client_app.command("link")(links_cmd.link_command(_history_store))
client_app.command("links")(client_links_cmd.links)
client_app.command("erase")(erase_cmd.erase_command)
client_app.command("erasures")(erase_cmd.erasures_command)
app.add_typer(links_cmd.manager_app, name="manager")
app.command("report")(report_command)
app.command("demo-data")(demo_data_command)
app.command("demo")(demo_command)
app.command("sandbox")(sandbox_command)
app.add_typer(nlu_app, name="nlu")
app.add_typer(model_cmd.app, name="model")
app.command("transcribe")(transcribe_cmd.transcribe)
app.command("call")(call_cmd.call)
app.add_typer(recordings_cmd.app, name="recordings")
# call scripts: check (file:line problems), render (a WAV per prompt), try (typed answers)
app.add_typer(scenario_cmd.make_app(_history_store), name="scenario")
app.add_typer(users_cmd.app, name="user")
app.add_typer(crm_cmd.app, name="crm")


_outreach = outreach_cmd.Commands(
    outreach_cmd.Wiring(planning_source=_planning_source, history_store=_history_store)
)
app.command("plan")(_outreach.plan)
app.command("attempts")(_outreach.attempts)


@app.command("run")
def run_command(
    duration: float | None = typer.Option(
        None, "--duration", min=0, help="Stop (draining in-flight work) after this many seconds."
    ),
) -> None:
    """Run the worker: planner, dispatcher, bot, calls, transcription, dashboard."""
    from app.worker import main as run_worker
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
