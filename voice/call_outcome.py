"""Pure decisions after a call: its outcome for the outreach engine, what goes into the history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from povtor.domain import (
    ChannelKind,
    EventKind,
    NpsGroup,
    OutcomeKind,
    Purpose,
    ReasonCategory,
    nps_group,
)
from povtor.ports import (
    ClientSettings,
    NewEvent,
    NewNpsResponse,
    NewTask,
    NpsAnswers,
    TaskBook,
    Timeline,
)
from voice.scenario_runner import Conversation
from voice.transfer import transfer_summary


class CallHistoryWrites(NpsAnswers, ClientSettings, Timeline, TaskBook, Protocol):
    """What a finished conversation writes: the answer, an opt-out said on the call, and a
    transfer to a person (with a call-back task when it did not connect)."""


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
            # a promoter's answer is what they liked: no churn category on praise
            reason_category=None
            if purpose is Purpose.NPS
            and isinstance(score, int)
            and nps_group(score) is NpsGroup.PROMOTER
            else _category(data.get("reason_category")),
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
    transfer = data.get("transfer")
    if isinstance(transfer, Mapping):
        writes += _transfer_writes(client_id, transfer, call_uuid)
    return writes


def _transfer_writes(
    client_id: int, transfer: Mapping[str, Any], call_uuid: str
) -> list[HistoryWrite]:
    """The transfer in the client's timeline; when it did not connect, a call-back task."""
    summary = transfer_summary(dict(transfer))
    event = NewEvent(
        client_id=client_id,
        kind=EventKind.CALL,
        summary=summary,
        ref=f"call:{call_uuid}",
        data={"call_uuid": call_uuid, "transfer": dict(transfer)},
        dedup_key=f"call-transfer:{call_uuid}",
    )

    async def record(history: CallHistoryWrites) -> Any:
        return await history.append_event(event)

    writes: list[HistoryWrite] = [record]
    if not transfer.get("connected"):
        task = NewTask(
            client_id=client_id,
            kind="callback",
            title=(
                "Перезвонить клиенту: просил менеджера"
                if transfer.get("stage") == "no_target"
                else "Перезвонить клиенту: просил менеджера, перевод не удался"
            ),
            due_at=datetime.now(UTC),
            source_ref=f"call:{call_uuid}",
            note=summary,
            dedup_key=f"call-transfer-callback:{call_uuid}",
        )

        async def callback(history: CallHistoryWrites) -> Any:
            return await history.create_task(task)

        writes.append(callback)
    return writes
