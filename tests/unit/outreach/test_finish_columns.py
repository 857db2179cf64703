"""The outcomes' arrays for PostgreSQL, built in one pass: the same values as the rows the
queue writes one by one (the SQLite path)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from outreach.bulk import FINISH_COLUMNS
from outreach.queue import AttemptQueue, Claim, Finish, _finish_columns, _finish_params
from povtor.domain import Attempt, AttemptState, ChannelKind, Outcome, OutcomeKind, Purpose

NOW = datetime(2026, 5, 1, 9, tzinfo=UTC)


def _finish(no: int, outcome: Outcome, state: AttemptState, **kw: Any) -> Finish:
    attempt = Attempt(
        no, 100 + no, Purpose.NPS, ChannelKind.CALL, AttemptState.IN_PROGRESS,
        NOW - timedelta(hours=1), f"k{no}", attempt_no=no, our_failures=1,
    )  # fmt: skip
    return Finish(Claim(attempt, f"t{no}", False, 0), ChannelKind.CALL, outcome, state, **kw)


def test_the_arrays_hold_what_the_rows_would() -> None:
    items = [
        _finish(1, Outcome(OutcomeKind.ANSWERED, data={"score": 9}), AttemptState.DONE),
        _finish(
            2,
            Outcome(OutcomeKind.NO_ANSWER, "тишина", sip_code=480, ref="call:2"),
            AttemptState.RETRY_SCHEDULED,
            retry_at=NOW + timedelta(hours=2),
            detail="retry later",
        ),
        _finish(
            3,
            Outcome(OutcomeKind.FAILED, "trunk down", ours=True, finished_at=NOW),
            AttemptState.GIVEN_UP,
        ),
    ]
    columns = _finish_columns(items, NOW)
    assert list(columns) == list(FINISH_COLUMNS)

    queue = AttemptQueue.__new__(AttemptQueue)
    queue.worker_id = "w"
    params = [_finish_params(f, NOW) for f in items]
    rows = [queue._outcome_row(f, NOW) for f in items]
    assert columns == {
        "ids": [p["b_id"] for p in params],
        "tokens": ["t1", "t2", "t3"],
        "states": [p["b_state"] for p in params],
        "not_befores": [p["b_not_before"] for p in params],
        "attempt_nos": [p["b_attempt_no"] for p in params],
        "outcomes": [p["b_outcome"] for p in params],
        "details": [p["b_detail"] for p in params],
        "finished": [p["b_finished"] for p in params],
        "our_failures": [p["b_our_failures"] for p in params],
        "exec_nos": [r["attempt_no"] for r in rows],
        "outcome_details": [r["detail"] for r in rows],
        "sip_codes": [r["sip_code"] for r in rows],
        "refs": [r["ref"] for r in rows],
        "data": [
            None if r["data"] is None else json.dumps(r["data"], ensure_ascii=False) for r in rows
        ],
        "recorded": [r["recorded_at"] for r in rows],
    }
    assert columns["data"][0] == '{"score": 9}'
    assert columns["attempt_nos"][1] == 3  # a retry: the next execution
    assert columns["our_failures"][2] == 2  # our own failure counted
