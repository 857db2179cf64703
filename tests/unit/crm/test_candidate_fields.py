"""The planning source builds candidates positionally: its order is the dataclass's."""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace

from crm_sync.history.planning_source import CANDIDATE_FIELDS, _candidate
from povtor.db import utcnow
from povtor.domain import Candidate, ChannelKind, ConsentChannel, Purpose


def test_candidate_fields_are_passed_in_the_dataclass_order() -> None:
    assert tuple(f.name for f in fields(Candidate)) == CANDIDATE_FIELDS


def test_a_candidate_from_a_row_has_each_column_in_its_field() -> None:
    row = SimpleNamespace(
        client_id=7,
        external_id="C7",
        timezone="Asia/Vladivostok",
        preferred_channel="call",
        linked=1,
        telegram_reachable=False,
        service_call=1,
        service_telegram=None,
        advertising_call=None,
        advertising_telegram=0,
    )
    due = utcnow()
    got = _candidate(row, Purpose.NPS, due_at=due, reason="why", key="k", data={"a": 1})
    assert got == Candidate(
        client_id=7,
        external_id="C7",
        purpose=Purpose.NPS,
        due_at=due,
        reason="why",
        key="k",
        timezone="Asia/Vladivostok",
        preferred_channel=ChannelKind.CALL,
        telegram_linked=True,
        telegram_reachable=False,
        consents=((ConsentChannel.CALL, True),),
        opted_out=False,
        data={"a": 1},
        ad_consents=((ConsentChannel.TELEGRAM, False),),
    )
