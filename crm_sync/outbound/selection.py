"""Which timeline events go to the CRM, and as what (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from povtor.domain import EventKind
from povtor.errors import ConfigError


class SyncKind(StrEnum):
    """What an event is for the CRM; ``POVTOR_CRM_EVENTS`` lists the ones to push."""

    OUTCOME = "outcome"  # what came of a reminder, survey or win-back (call or message)
    NPS = "nps"  # a score, with the reason when there is one
    COMPLAINT = "complaint"
    TASK = "task"  # a task created for a manager: a to-do in the CRM
    TASK_UPDATE = "task_update"  # a task taken, moved or closed in the dashboard
    OPT_OUT = "opt_out"  # the client opted out of contacts (or back in)
    CALL = "call"  # every call as the voice robot logged it (outcomes already cover outreach)
    MESSAGE_IN = "message_in"  # free text the client wrote to the bot
    NOTE = "note"  # other notes (bot linked, a manager closed an alert)


DEFAULT_KINDS = frozenset(
    {SyncKind.OUTCOME, SyncKind.NPS, SyncKind.COMPLAINT, SyncKind.TASK, SyncKind.OPT_OUT}
)


def parse_kinds(names: Iterable[str]) -> frozenset[SyncKind]:
    kinds = set()
    for name in names:
        try:
            kinds.add(SyncKind(name.strip().lower()))
        except ValueError:
            known = ", ".join(k.value for k in SyncKind)
            raise ConfigError(
                f"POVTOR_CRM_EVENTS: unknown kind {name!r} (known: {known})"
            ) from None
    return frozenset(kinds)


def sync_kind(kind: str, data: Mapping[str, Any] | None) -> SyncKind | None:
    """The CRM kind of a timeline event, or None for events that stay in Povtor (orders,
    messages sent, consents)."""
    data = data or {}
    match kind:
        case EventKind.NOTE:
            return SyncKind.OUTCOME if "outcome" in data else SyncKind.NOTE
        case EventKind.NPS_ANSWER:
            return SyncKind.NPS
        case EventKind.COMPLAINT:
            return SyncKind.COMPLAINT
        case EventKind.TASK:
            return SyncKind.TASK_UPDATE if "task_id" in data else SyncKind.TASK
        case EventKind.OPT_OUT | EventKind.OPT_IN:
            return SyncKind.OPT_OUT
        case EventKind.CALL:
            return SyncKind.CALL
        case EventKind.MESSAGE_IN:
            return SyncKind.MESSAGE_IN
    return None
