"""Pure decisions after a call: its outcome for the outreach engine, what goes into the history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from povtor.domain import ChannelKind, OutcomeKind, Purpose, ReasonCategory
from povtor.ports import ClientSettings, NewNpsResponse, NpsAnswers
from voice.scenario_runner import Conversation


class CallHistoryWrites(NpsAnswers, ClientSettings, Protocol):
    """What a finished conversation writes: the answer, and an opt-out said on the call."""


HistoryWrite = Callable[[CallHistoryWrites], Awaitable[Any]]


def outcome_kind(engine: OutcomeKind, conversation: Conversation | None) -> OutcomeKind:
    """The engine's outcome, except for answered calls: an answering machine is voicemail, a
    client who gave any answer was talked to (even if they hung up on the goodbye), and one who
    hung up before answering anything hung up early (retried later)."""
    if engine not in (OutcomeKind.ANSWERED, OutcomeKind.HUNG_UP_EARLY) or conversation is None:
        return engine
    if conversation.finished == "voicemail":
        return OutcomeKind.VOICEMAIL
    if conversation.learnt:
        return OutcomeKind.ANSWERED
    if conversation.finished == "call_ended":
        return OutcomeKind.HUNG_UP_EARLY
    return engine


def _category(value: Any) -> ReasonCategory | None:
    try:
        return ReasonCategory(value) if value else None
    except ValueError:
        return None


def history_writes(
    purpose: Purpose, client_id: int, data: Mapping[str, Any], call_uuid: str
) -> list[HistoryWrite]:
    """The client-history updates a conversation calls for, each idempotent (dedup keys)."""
    writes: list[HistoryWrite] = []
    score = data.get("score")
    reason = data.get("reason_text")
    if (purpose is Purpose.NPS and score is not None) or (
        purpose is Purpose.WINBACK and reason is not None
    ):
        response = NewNpsResponse(
            client_id=client_id,
            score=score if purpose is Purpose.NPS else None,
            channel=ChannelKind.CALL,
            reason_text=reason,
            reason_category=_category(data.get("reason_category")),
            source_kind="call",
            source_id=call_uuid,
            dedup_key=f"call:{purpose.value}:{call_uuid}",
        )

        async def record(history: CallHistoryWrites) -> Any:
            return await history.record_nps(response)

        writes.append(record)
    if data.get("optout"):

        async def opt_out(history: CallHistoryWrites) -> Any:
            return await history.set_opt_out(client_id, True, source=f"call:{call_uuid}")

        writes.append(opt_out)
    return writes
