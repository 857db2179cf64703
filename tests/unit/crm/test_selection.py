"""Which timeline events go to the CRM, and as what."""

from __future__ import annotations

from typing import Any

import pytest

from crm_sync.outbound.selection import DEFAULT_KINDS, SyncKind, parse_kinds, sync_kind
from povtor.errors import ConfigError


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("note", {"outcome": "answered", "purpose": "nps"}, SyncKind.OUTCOME),
        ("note", {"how": "deep_link"}, SyncKind.NOTE),
        ("note", None, SyncKind.NOTE),
        ("nps_answer", {"score": 9}, SyncKind.NPS),
        ("complaint", None, SyncKind.COMPLAINT),
        ("task", {"kind": "detractor", "due_at": "2026-05-05T09:00:00+00:00"}, SyncKind.TASK),
        ("task", {"task_id": 4, "status": "done"}, SyncKind.TASK_UPDATE),
        ("opt_out", {"source": "bot"}, SyncKind.OPT_OUT),
        ("opt_in", {"source": "bot"}, SyncKind.OPT_OUT),
        ("call", {"outcome": "answered"}, SyncKind.CALL),
        ("message_in", None, SyncKind.MESSAGE_IN),
        ("order", {"amount": "990"}, None),
        ("message_out", {"purpose": "nps"}, None),
        ("consent", {"granted": True}, None),
        ("something_new", None, None),
    ],
)
def test_events_map_to_their_crm_kind(
    kind: str, data: dict[str, Any] | None, expected: SyncKind | None
) -> None:
    assert sync_kind(kind, data) is expected


def test_default_kinds_are_the_outcomes_a_manager_acts_on() -> None:
    assert {k.value for k in DEFAULT_KINDS} == {"outcome", "nps", "complaint", "task", "opt_out"}


def test_kinds_from_settings_are_checked() -> None:
    assert parse_kinds([" NPS", "task"]) == {SyncKind.NPS, SyncKind.TASK}
    with pytest.raises(ConfigError, match="unknown kind 'orders'"):
        parse_kinds(["nps", "orders"])
