"""A finished call as an entry in the client's timeline (through the Timeline port)."""

from __future__ import annotations

from povtor.domain import EventKind, OutcomeKind, TimelineEvent
from povtor.ports import NewEvent, Timeline
from voice.call_records import CallRecord

_OUTCOME_TEXT = {
    OutcomeKind.ANSWERED: "разговор",
    OutcomeKind.BUSY: "занято",
    OutcomeKind.NO_ANSWER: "не ответил",
    OutcomeKind.VOICEMAIL: "автоответчик",
    OutcomeKind.REJECTED: "вызов отклонён",
    OutcomeKind.HUNG_UP_EARLY: "клиент сразу положил трубку",
    OutcomeKind.UNREACHABLE: "номер недоступен",
    OutcomeKind.FAILED: "звонок не удался",
    OutcomeKind.INTERRUPTED: "звонок прерван сбоем робота",
}


def _duration_ru(seconds: float) -> str:
    total = round(seconds)
    minutes, secs = divmod(total, 60)
    return f"{minutes} мин {secs} с" if minutes else f"{secs} с"


def call_summary(call: CallRecord) -> str:
    """One Russian line for the timeline: «Звонок: разговор 1 мин 5 с»."""
    text = _OUTCOME_TEXT.get(call.outcome, "завершён") if call.outcome else "завершён"
    if call.outcome is OutcomeKind.ANSWERED and call.talk_s:
        text = f"{text} {_duration_ru(call.talk_s)}"
    if call.outcome is OutcomeKind.FAILED and call.sip_code:
        text = f"{text} (SIP {call.sip_code})"
    if call.dtmf:
        text = f"{text}, нажато: {call.dtmf}"
    return f"Звонок: {text}"


async def record_call_finished(history: Timeline, call: CallRecord) -> TimelineEvent | None:
    """Appends the CALL event of a known client's call (once per call); None without a client."""
    if call.client_id is None:
        return None
    return await history.append_event(
        NewEvent(
            client_id=call.client_id,
            kind=EventKind.CALL,
            summary=call_summary(call),
            at=call.ended_at,
            ref=f"call:{call.id}",
            data={
                "call_uuid": call.uuid,
                "outcome": call.outcome.value if call.outcome else None,
                "sip_code": call.sip_code,
                "talk_s": round(call.talk_s, 2),
                "hangup_by": call.hangup_by.value if call.hangup_by else None,
                "dtmf": call.dtmf,
                "trunk": call.trunk,
                "attempt_id": call.attempt_id,
            },
            dedup_key=f"call:{call.uuid}",
        )
    )
