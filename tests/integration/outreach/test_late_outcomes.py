"""Late outcomes reported as a set (a page of button presses) through the real sink."""

from __future__ import annotations

import pytest

from outreach.late_outcomes import LateOutcomes
from outreach.listing import AttemptListing
from outreach.rules import ContactRules
from povtor.db import session_factory
from povtor.domain import AttemptState, ChannelKind, OutcomeKind
from povtor.errors import NotFound
from povtor.ports import LateOutcome
from tests.integration.outreach.conftest import Clock, attempt, new_client


async def _sent_messages(store, queue, call, telegram, make_dispatcher, clock, count: int):
    for n in range(count):
        cid = await new_client(store, f"C{n}", chat=1000 + n)
        await queue.add([attempt(cid, f"k{n}", channel=ChannelKind.TELEGRAM)], clock())
    dispatcher = make_dispatcher(call, telegram)
    await dispatcher.run_until_idle()
    return dispatcher


async def test_a_set_of_answers_records_each_once_and_cancels_their_fallback_calls(
    engine, store, queue, call, telegram, make_dispatcher, clock: Clock
) -> None:
    dispatcher = await _sent_messages(store, queue, call, telegram, make_dispatcher, clock, 5)
    listing = AttemptListing(session_factory(engine))
    messages = sorted(
        (v for v in await listing.attempts() if v.channel is ChannelKind.TELEGRAM),
        key=lambda v: v.id,
    )
    assert len(messages) == 5
    recorded: list[int] = []
    sink = LateOutcomes(
        session_factory(engine), clock=clock, on_recorded=lambda: recorded.append(1)
    )
    answered = [LateOutcome(v.id, OutcomeKind.ANSWERED, {"button": "repeat"}) for v in messages]
    batch = [*answered[:3], answered[0]]  # the same press twice in one page
    assert await sink.report_many(batch) == set()
    assert await sink.report_many(answered) == set()  # the page handled again, and two more
    assert len(recorded) == 2

    outcomes = [o for o in await listing.outcomes() if o.late]
    assert sorted(o.attempt_id for o in outcomes) == [v.id for v in messages]
    assert all(o.kind is OutcomeKind.ANSWERED for o in outcomes)

    clock.advance(ContactRules().answer_timeout)
    await dispatcher.run_until_idle()
    assert call.executed == []  # no fallback call for any answered message
    fallbacks = [v for v in await listing.attempts() if v.fallback_of is not None]
    assert len(fallbacks) == 5
    assert {v.state for v in fallbacks} == {AttemptState.GIVEN_UP}


async def test_unknown_attempts_are_returned_and_the_rest_recorded(
    engine, store, queue, call, telegram, make_dispatcher, clock: Clock
) -> None:
    await _sent_messages(store, queue, call, telegram, make_dispatcher, clock, 2)
    listing = AttemptListing(session_factory(engine))
    known = [v.id for v in await listing.attempts()]
    sink = LateOutcomes(session_factory(engine), clock=clock)
    missing = await sink.report_many(
        [
            LateOutcome(known[0], OutcomeKind.ANSWERED, {"score": 9}),
            LateOutcome(987_654, OutcomeKind.ANSWERED, {"score": 3}),
            LateOutcome(known[1], OutcomeKind.REJECTED, {"button": "no"}),
        ]
    )
    assert missing == {987_654}
    late = {o.attempt_id: o.kind for o in await listing.outcomes() if o.late}
    assert late == {known[0]: OutcomeKind.ANSWERED, known[1]: OutcomeKind.REJECTED}
    views = {v.id: v for v in await listing.attempts()}
    assert views[known[1]].last_outcome is OutcomeKind.REJECTED

    with pytest.raises(NotFound):
        await sink.report(987_654, OutcomeKind.ANSWERED)
    assert await sink.report_many([]) == set()


async def test_a_page_larger_than_one_statement_is_recorded_whole(
    engine, store, queue, call, telegram, make_dispatcher, clock: Clock
) -> None:
    await _sent_messages(store, queue, call, telegram, make_dispatcher, clock, 3)
    listing = AttemptListing(session_factory(engine))
    ids = [v.id for v in await listing.attempts()]
    sink = LateOutcomes(session_factory(engine), clock=clock)
    # 3 attempts x 300 distinct answers: 900 rows, more than one page of presses
    batch = [
        LateOutcome(ids[n % 3], OutcomeKind.ANSWERED, {"text": f"ответ {n}"}) for n in range(900)
    ]
    assert await sink.report_many(batch) == set()
    assert len([o for o in await listing.outcomes() if o.late]) == 900
