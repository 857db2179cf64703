"""The dispatcher over real SQLite and PostgreSQL: states, policies at contact time, retries,
fallbacks, takeovers, and each outcome recorded exactly once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from outreach.followups import Followups
from outreach.late_outcomes import LateOutcomes
from outreach.listing import AttemptListing
from outreach.queue import AttemptQueue
from outreach.rules import Caps, ContactRules, RetryRule
from povtor.db import session_factory
from povtor.domain import (
    Attempt,
    AttemptState,
    ChannelKind,
    Client,
    ConsentChannel,
    EventKind,
    Outcome,
    OutcomeKind,
)
from tests.fakes.outreach_channels import ScriptedChannel
from tests.integration.outreach.conftest import NOON_MSK, Clock, attempt, new_client


def listing(engine: AsyncEngine) -> AttemptListing:
    return AttemptListing(session_factory(engine))


async def test_answered_call_goes_to_done_with_one_outcome_and_a_timeline_note(
    engine, store: SqlHistoryStore, queue: AttemptQueue, call, make_dispatcher, clock: Clock
) -> None:
    cid = await new_client(store, "C1")
    assert await queue.add([attempt(cid, "reorder:1")], clock()) == 1
    assert await queue.add([attempt(cid, "reorder:1")], clock()) == 0  # same key: ignored
    await make_dispatcher(call).run_until_idle()

    [view] = await listing(engine).attempts()
    assert view.state is AttemptState.DONE
    assert view.last_outcome is OutcomeKind.ANSWERED
    assert call.executed == [("reorder:1#1", "C1")]
    [outcome] = await listing(engine).outcomes()
    assert outcome.kind is OutcomeKind.ANSWERED

    await Followups(session_factory(engine), store).run_once()
    await Followups(session_factory(engine), store).run_once()  # nothing left, nothing doubled
    notes = [e for e in await store.timeline(cid) if e.kind is EventKind.NOTE]
    assert len(notes) == 1
    assert notes[0].ref == f"attempt:{view.id}"


async def test_busy_line_is_retried_after_its_delay_then_answered(
    engine, store, queue, make_dispatcher, clock: Clock
) -> None:
    cid = await new_client(store, "C1")
    call = ScriptedChannel(ChannelKind.CALL, {"C1": [OutcomeKind.BUSY, OutcomeKind.ANSWERED]})
    rules = ContactRules(
        retries={OutcomeKind.BUSY: RetryRule(timedelta(minutes=30), 3)},
        call_caps=Caps(5, 10, 20),  # room for two calls a day
    )
    await queue.add([attempt(cid, "k")], clock())
    dispatcher = make_dispatcher(call, rules=rules)
    await dispatcher.run_until_idle()
    [view] = await listing(engine).attempts()
    assert view.state is AttemptState.RETRY_SCHEDULED
    assert view.not_before == clock() + timedelta(minutes=30)
    assert view.attempt_no == 2

    await dispatcher.run_until_idle()  # not due yet: nothing happens
    assert len(call.executed) == 1
    clock.advance(timedelta(minutes=31))
    await dispatcher.run_until_idle()
    [view] = await listing(engine).attempts()
    assert view.state is AttemptState.DONE
    assert [k for k, _ in call.executed] == ["k#1", "k#2"]
    assert [o.kind for o in await listing(engine).outcomes()] == [
        OutcomeKind.BUSY,
        OutcomeKind.ANSWERED,
    ]


async def test_opted_out_client_is_never_contacted(
    engine, store: SqlHistoryStore, queue, call, make_dispatcher, clock
) -> None:
    cid = await new_client(store, "C1")
    await store.set_opt_out(cid, True, source="test")
    await queue.add([attempt(cid, "k")], clock())
    await make_dispatcher(call).run_until_idle()
    [view] = await listing(engine).attempts()
    assert view.state is AttemptState.GIVEN_UP
    assert view.last_detail == "opted out"
    assert call.executed == []


async def test_refused_calls_switch_to_a_linked_telegram_chat(
    engine, store: SqlHistoryStore, queue, call, telegram, make_dispatcher, clock
) -> None:
    cid = await new_client(store, "C1", chat=555)
    await store.set_consent(cid, ConsentChannel.CALL, False, source="test")
    await queue.add([attempt(cid, "k")], clock())
    await make_dispatcher(call, telegram).run_until_idle()
    view = next(v for v in await listing(engine).attempts() if v.idempotency_key == "k")
    assert view.channel is ChannelKind.TELEGRAM
    assert call.executed == []
    assert telegram.executed == [("k#1", "C1")]


async def test_night_in_client_zone_defers_to_the_morning(
    engine, store, queue, call, make_dispatcher, clock: Clock
) -> None:
    # 09:00 UTC is 21:00 in Kamchatka (UTC+12): calls wait for 09:00 local = 21:00 UTC.
    cid = await new_client(store, "C1", tz="Asia/Kamchatka")
    await queue.add([attempt(cid, "k")], clock())
    await make_dispatcher(call).run_until_idle()
    [view] = await listing(engine).attempts()
    assert view.state is AttemptState.PLANNED
    assert view.not_before == NOON_MSK + timedelta(hours=12)
    assert view.last_detail == "quiet hours"
    assert call.executed == []


async def test_second_call_the_same_day_waits_for_the_next_local_day(
    engine, store, queue, call, make_dispatcher, clock: Clock
) -> None:
    cid = await new_client(store, "C1")
    await queue.add([attempt(cid, "a"), attempt(cid, "b")], clock())
    await make_dispatcher(call).run_until_idle()
    views = await listing(engine).attempts()
    assert sorted(v.state for v in views) == [AttemptState.DONE, AttemptState.PLANNED]
    deferred = next(v for v in views if v.state is AttemptState.PLANNED)
    # next local day 00:00 MSK, then the call window: Wednesday 09:00 MSK = 06:00 UTC.
    assert deferred.not_before == NOON_MSK + timedelta(hours=21)
    assert deferred.last_detail == "contact cap reached"
    assert len(call.executed) == 1


async def test_unreachable_chat_falls_back_to_a_call_at_once(
    engine, store, queue, call, make_dispatcher, clock
) -> None:
    cid = await new_client(store, "C1", chat=777)
    telegram = ScriptedChannel(ChannelKind.TELEGRAM, {"C1": [OutcomeKind.UNREACHABLE]})
    await queue.add([attempt(cid, "k", channel=ChannelKind.TELEGRAM)], clock())
    await make_dispatcher(call, telegram).run_until_idle()
    views = {v.channel: v for v in await listing(engine).attempts()}
    assert views[ChannelKind.TELEGRAM].state is AttemptState.GIVEN_UP
    assert views[ChannelKind.CALL].state is AttemptState.DONE
    assert views[ChannelKind.CALL].fallback_of == views[ChannelKind.TELEGRAM].id
    assert call.executed == [("k:call#1", "C1")]


async def test_unanswered_message_falls_back_to_a_call_after_the_answer_timeout(
    engine, store, queue, call, telegram, make_dispatcher, clock: Clock
) -> None:
    cid = await new_client(store, "C1", chat=777)
    await queue.add([attempt(cid, "k", channel=ChannelKind.TELEGRAM)], clock())
    dispatcher = make_dispatcher(call, telegram)
    await dispatcher.run_until_idle()
    assert call.executed == []
    clock.advance(ContactRules().answer_timeout)
    await dispatcher.run_until_idle()
    assert call.executed == [("k:call#1", "C1")]


async def test_answer_in_telegram_cancels_the_fallback_call(
    engine, store, queue, call, telegram, make_dispatcher, clock: Clock
) -> None:
    cid = await new_client(store, "C1", chat=777)
    await queue.add([attempt(cid, "k", channel=ChannelKind.TELEGRAM)], clock())
    dispatcher = make_dispatcher(call, telegram)
    await dispatcher.run_until_idle()
    message = next(v for v in await listing(engine).attempts() if v.channel.value == "telegram")
    sink = LateOutcomes(session_factory(engine), clock=clock)
    await sink.report(message.id, OutcomeKind.ANSWERED, {"text": "спасибо, закажу"})
    clock.advance(ContactRules().answer_timeout)
    await dispatcher.run_until_idle()
    assert call.executed == []
    fallback = next(v for v in await listing(engine).attempts() if v.fallback_of == message.id)
    assert fallback.state is AttemptState.GIVEN_UP


class _AnsweredWhileSending:
    """A message the client answers before the channel has even returned (a quick press)."""

    kind = ChannelKind.TELEGRAM

    def __init__(self, sink: LateOutcomes) -> None:
        self.sink = sink

    async def execute(self, attempt: Attempt, client: Client) -> Outcome:
        await self.sink.report(attempt.id, OutcomeKind.ANSWERED, {"score": 9})
        return Outcome(OutcomeKind.DELIVERED)


async def test_answer_before_the_delivery_is_recorded_still_cancels_the_fallback_call(
    engine, store, queue, call, make_dispatcher, clock: Clock
) -> None:
    cid = await new_client(store, "C1", chat=777)
    await queue.add([attempt(cid, "k", channel=ChannelKind.TELEGRAM)], clock())
    sink = LateOutcomes(session_factory(engine), clock=clock)
    dispatcher = make_dispatcher(call, _AnsweredWhileSending(sink))
    await dispatcher.run_until_idle()
    clock.advance(ContactRules().answer_timeout)
    await dispatcher.run_until_idle()
    assert call.executed == []
    message = next(v for v in await listing(engine).attempts() if v.channel.value == "telegram")
    fallback = next(v for v in await listing(engine).attempts() if v.fallback_of == message.id)
    assert fallback.state is AttemptState.GIVEN_UP


async def test_detractor_score_creates_one_manager_task_due_within_a_day(
    engine, store: SqlHistoryStore, queue, call, telegram, make_dispatcher, clock: Clock
) -> None:
    cid = await new_client(store, "C1", chat=777)
    await queue.add([attempt(cid, "nps:1", channel=ChannelKind.TELEGRAM)], clock())
    await make_dispatcher(call, telegram).run_until_idle()
    [view] = await listing(engine).attempts(channel=ChannelKind.TELEGRAM)
    sink = LateOutcomes(session_factory(engine), clock=clock)
    for _ in range(2):  # the bot may report twice
        await sink.report(view.id, OutcomeKind.ANSWERED, {"score": 3})
    followups = Followups(session_factory(engine), store, clock=clock)
    await followups.run_once()
    [task] = await store.list_tasks()
    assert task.kind == "detractor"
    assert task.client_id == cid
    assert clock() < task.due_at <= clock() + timedelta(hours=24)
    late = [o for o in await listing(engine).outcomes() if o.late]
    assert len(late) == 1


async def test_promoter_score_creates_no_task(
    engine, store: SqlHistoryStore, queue, call, telegram, make_dispatcher, clock: Clock
) -> None:
    cid = await new_client(store, "C1", chat=777)
    await queue.add([attempt(cid, "nps:1", channel=ChannelKind.TELEGRAM)], clock())
    await make_dispatcher(call, telegram).run_until_idle()
    [view] = await listing(engine).attempts(channel=ChannelKind.TELEGRAM)
    await LateOutcomes(session_factory(engine), clock=clock).report(
        view.id, OutcomeKind.ANSWERED, {"score": 10}
    )
    await Followups(session_factory(engine), store, clock=clock).run_once()
    assert await store.list_tasks() == []


async def test_attempt_of_a_dead_worker_is_resumed_and_its_contact_not_repeated(
    engine, store, call, make_dispatcher, clock: Clock
) -> None:
    """A worker claimed and started an attempt, then died: its lease runs out, another worker
    takes it over; the channel sees the same execution key and does not contact again."""
    cid = await new_client(store, "C1")
    dead = AttemptQueue(session_factory(engine), worker_id="dead", lease=timedelta(seconds=60))
    await dead.add([attempt(cid, "k")], clock())
    dead_dispatcher = make_dispatcher(call)
    dead_dispatcher.queue = dead
    claims = await dead.claim(clock(), 10)
    decisions = await dead_dispatcher._settle(claims, clock())
    assert [type(d).__name__ for d in decisions] == ["Start"]
    # the "call" happened just before the crash:
    call.gate = None
    client = (await dead_dispatcher.clients.get_clients([cid]))[cid]
    await call.execute(claims[0].attempt, client)

    clock.advance(timedelta(seconds=61))
    await make_dispatcher(call).run_until_idle()
    [view] = await listing(engine).attempts()
    assert view.state is AttemptState.DONE
    assert view.takeovers == 1
    assert call.executed == [("k#1", "C1")]
    assert len(await listing(engine).outcomes()) == 1


async def test_outcome_of_a_worker_that_lost_its_lease_is_refused(
    engine, store, queue: AttemptQueue, call, make_dispatcher, clock: Clock
) -> None:
    from outreach.queue import Finish
    from povtor.domain import Outcome

    cid = await new_client(store, "C1")
    await queue.add([attempt(cid, "k")], clock())
    slow = make_dispatcher(call)
    claims = await queue.claim(clock(), 10)
    await slow._settle(claims, clock())
    clock.advance(timedelta(seconds=61))
    other = AttemptQueue(session_factory(engine), worker_id="w2", lease=timedelta(seconds=60))
    taken = await other.take_over_expired(clock(), 10)
    assert [c.attempt.id for c in taken] == [claims[0].attempt.id]
    late = Finish(claims[0], ChannelKind.CALL, Outcome(OutcomeKind.ANSWERED), AttemptState.DONE)
    assert await queue.finish([late], clock()) == []
    assert await listing(engine).outcomes() == []


async def test_attempts_of_a_channel_that_is_away_wait_without_a_try_spent(
    engine, store, queue, call, make_dispatcher, clock: Clock
) -> None:
    from povtor.health import HealthBoard, HealthState

    board = HealthBoard()
    board.report("telegram", HealthState.DOWN, "cannot reach the Bot API")
    chatting = await new_client(store, "C1", chat=777)
    calling = await new_client(store, "C2")
    telegram = ScriptedChannel(ChannelKind.TELEGRAM, {"C1": [OutcomeKind.DELIVERED]})
    await queue.add(
        [attempt(chatting, "t", channel=ChannelKind.TELEGRAM), attempt(calling, "c")], clock()
    )
    dispatcher = make_dispatcher(call, telegram, channel_down_retry_s=45.0)
    dispatcher.unavailable = board.unavailable
    await dispatcher.run_until_idle()
    views = {v.channel: v for v in await listing(engine).attempts()}
    held = views[ChannelKind.TELEGRAM]
    assert (held.state, held.attempt_no) == (AttemptState.PLANNED, 1)
    assert held.not_before == NOON_MSK + timedelta(seconds=45)
    assert held.last_detail == "telegram unavailable: cannot reach the Bot API"
    assert telegram.executed == []
    assert call.executed == [("c#1", "C2")]  # other channels go on

    board.ok("telegram")
    clock.now += timedelta(seconds=45)
    await dispatcher.run_until_idle()
    assert telegram.executed == [("t#1", "C1")]  # the first try, when Telegram is back
