"""``povtor call``: one test call through a trunk, as an operator does to check it.

With ``--json`` the last line of stdout is exactly::

    {"outcome": "answered"|"busy"|"no_answer"|"rejected"|"failed", "sip_code": N,
     "duration_s": S, "dtmf": "digits received", "recording": PATH or null}

A client who hangs up early still answered: the JSON says "answered" (the call result kept
by the engine says ``hung_up_early``). A trunk that never answers is "failed" (the text output
says why: "no response from HOST:PORT", a DNS failure).

The test call listens on a free local port and does not REGISTER, so it runs beside a worker
that holds ``POVTOR_SIP_LOCAL_PORT`` and the trunk's registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import typer

JSON_OUTCOMES = {
    "answered": "answered",
    "hung_up_early": "answered",
    "busy": "busy",
    "no_answer": "no_answer",
    "rejected": "rejected",
}


def call(
    uri: str = typer.Argument(..., help="Number or SIP URI to call."),
    trunk: str | None = typer.Option(None, "--trunk", help="Trunk name (default: the first)."),
    play: Path | None = typer.Option(None, "--play", help="WAV to say once answered."),
    record: Path | None = typer.Option(None, "--record", help="Stereo WAV of the call."),
    ring_timeout: float | None = typer.Option(
        None, "--ring-timeout", help="Seconds to ring (default: POVTOR_SIP_RING_TIMEOUT_S)."
    ),
    hold: float | None = typer.Option(
        None,
        "--hold",
        help="Seconds to stay on the line after --play, then hang up (default: until the "
        "other side hangs up, at most POVTOR_CALL_MAX_CALL_S).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON line."),
) -> None:
    """Place one test call and report how it ended."""
    if play is not None and not play.is_file():
        raise typer.BadParameter(f"{play} is not a file", param_hint="--play")
    if record is not None:
        record = record.resolve()
    problem = _no_trunk(uri, trunk)
    if problem is not None:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    from povtor.errors import ChannelDown, ConfigError

    try:
        result = asyncio.run(_call(uri, trunk, play, record, ring_timeout, hold))
    except (ChannelDown, ConfigError) as err:
        typer.echo(f"povtor call: {err}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        result.pop("_reason")
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    else:
        recording = result["recording"] or "-"
        why = f": {reason}" if (reason := result.pop("_reason")) else ""
        typer.echo(
            f"{result['outcome']} (SIP {result['sip_code']}){why}, {result['duration_s']} s, "
            f"keys: {result['dtmf'] or '-'}, recording: {recording}"
        )
    raise typer.Exit(0 if result["outcome"] == "answered" else 1)


def _no_trunk(uri: str, trunk: str | None) -> str | None:
    """What is wrong when a number cannot be called at all: no trunk to send it through."""
    from povtor.errors import ConfigError
    from povtor.settings import SipSettings
    from voice.sip.trunks import load_trunks

    try:
        trunks = load_trunks(SipSettings())
    except ConfigError as err:
        return f"The SIP trunks are not usable: {err}"
    if trunk is not None and trunk not in trunks:
        return f"No trunk named {trunk!r}; configured: {', '.join(trunks)}"
    chosen = trunks[trunk] if trunk is not None else next(iter(trunks.values()))
    if "@" in uri or chosen.proxy or chosen.registrar or chosen.domain:
        return None
    return (
        "No SIP trunk is configured, so there is nowhere to send the call. Set "
        "POVTOR_SIP_PROXY=host:port (with POVTOR_SIP_USER and POVTOR_SIP_PASSWORD if the "
        "provider asks for them) or POVTOR_SIP_TRUNKS_FILE, or call a full SIP URI "
        "(sip:user@host)."
    )


async def _call(
    uri: str,
    trunk: str | None,
    play: Path | None,
    record: Path | None,
    ring_timeout: float | None,
    hold: float | None,
) -> dict[str, Any]:
    from povtor.settings import CallSettings, SipSettings
    from voice.engine import CallEngine
    from voice.recording import CallRecorder, RecordingWriter
    from voice.sip.trunks import load_trunks

    # a free port and no REGISTER: the worker may be running with the trunk's port and binding
    trunks = {
        name: config.model_copy(update={"local_port": 0, "register_enabled": False})
        for name, config in load_trunks(SipSettings()).items()
    }
    call_uuid = uuid.uuid4().hex
    with RecordingWriter(threads=1) as writer:
        factory = None
        if record is not None:
            folder = record.parent

            def factory(cid: str) -> CallRecorder:
                return CallRecorder.open(folder, cid, writer=writer)

        async with CallEngine(trunks, recorder_factory=factory) as engine:
            placed = await engine.start_call(
                uri, trunk=trunk, ring_timeout=ring_timeout, call_uuid=call_uuid
            )
            if await placed.wait_answered():
                if play is not None:
                    await placed.play(play)
                # a person testing a trunk listens until they hang up (never forever)
                limit = CallSettings().max_call_s if hold is None else hold
                if limit > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(limit):
                            await placed.done.wait()
                await placed.hangup()
            result = await placed.wait_ended()
    recording = None
    if result.recording is not None and record is not None:
        os.replace(result.recording.path, record)
        recording = str(record)
    return {
        "outcome": JSON_OUTCOMES.get(result.outcome.value, "failed"),
        "sip_code": result.sip_code if result.sip_code is not None else 408,
        "duration_s": result.duration_s,
        "dtmf": result.dtmf,
        "recording": recording,
        "_reason": result.reason if result.trunk_failure or result.sip_code is None else "",
    }
