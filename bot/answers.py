"""Button answers to reminders and win-back messages: recorded once, reported as outcomes.

Set-based: a whole batch of presses (one getUpdates page after a mass reminder) costs a few
statements on the bot's tables; the store writes that follow are idempotent (dedup keys), so
a batch handled again after a failure does not write twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.keyboards import REORDER_ACTIONS, WINBACK_ACTIONS
from bot.outbox_store import OutboxStore
from bot.press_store import PressStore
from bot.records import OutboxMessage
from bot.texts import Texts
from povtor.db import utcnow
from povtor.domain import EventKind, OutcomeKind
from povtor.ports import HistoryStore, LateOutcome, NewEvent, NewTask, OutcomeSink

log = logging.getLogger(__name__)

_LABELS = {
    ("reorder", "repeat"): "reorder_button_repeat",
    ("reorder", "later"): "reorder_button_later",
    ("reorder", "no"): "reorder_button_no",
    ("winback", "return"): "winback_button_return",
    ("winback", "no"): "winback_button_no",
}
_ACKS = {
    ("reorder", "repeat"): "reorder_ack_repeat",
    ("reorder", "later"): "reorder_ack_later",
    ("reorder", "no"): "reorder_ack_no",
    ("winback", "return"): "winback_ack_return",
    ("winback", "no"): "winback_ack_no",
}


@dataclass(frozen=True, slots=True)
class Press:
    query_id: str
    chat_id: int
    outbox_id: int
    act: str


def _valid(message: OutboxMessage | None, press: Press) -> bool:
    if message is None or message.chat_id != press.chat_id or message.client_id is None:
        return False
    allowed = REORDER_ACTIONS if message.purpose == "reorder" else WINBACK_ACTIONS
    return press.act in allowed and (message.purpose, press.act) in _LABELS


class Answers:
    """Button presses on reminders and win-back messages, recorded a set at a time."""

    def __init__(
        self,
        outbox: OutboxStore,
        presses: PressStore,
        store: HistoryStore,
        outcome_sink: OutcomeSink,
        texts: Texts,
    ) -> None:
        self._outbox = outbox
        self._presses = presses
        self._store = store
        self._outcome_sink = outcome_sink
        self._texts = texts

    async def record(self, presses: list[Press]) -> list[str]:
        """Record presses (each button of a message counts once); the toast text for each."""
        messages = await self._outbox.get_outboxes([p.outbox_id for p in presses])
        valid = [p for p in presses if _valid(messages.get(p.outbox_id), p)]
        winners = await self._presses.record_presses(
            [(p.outbox_id, p.act, p.act, p.chat_id, p.query_id) for p in valid]
        )
        counted = [p for p in valid if p.query_id in winners]
        await self._follow_up([(messages[p.outbox_id], p) for p in counted])
        toasts = []
        for press in presses:
            if press.query_id in winners:
                purpose = messages[press.outbox_id].purpose
                toasts.append(self._texts(_ACKS[(purpose, press.act)]))
            else:
                toasts.append(self._texts("already_answered"))
        return toasts

    async def _follow_up(self, counted: list[tuple[OutboxMessage, Press]]) -> None:
        """The store writes of the counted presses: their timeline events in one batch, the tasks
        of "repeat"/"return" in another, then the late outcomes in a third (all idempotent)."""
        events: list[NewEvent] = []
        tasks: list[NewTask] = []
        due_at = utcnow() + timedelta(hours=4)
        for message, press in counted:
            assert message.client_id is not None  # checked by _valid
            label = self._texts(_LABELS[(message.purpose, press.act)])
            events.append(
                NewEvent(
                    client_id=message.client_id,
                    kind=EventKind.MESSAGE_IN,
                    summary=f"Ответ в Telegram: «{label}»",
                    ref=f"message:{message.id}",
                    data={"purpose": message.purpose, "button": press.act},
                    dedup_key=f"tg:press:{message.id}:{press.act}",
                )
            )
            if press.act in {"repeat", "return"}:
                tasks.append(
                    NewTask(
                        client_id=message.client_id,
                        kind="reorder" if press.act == "repeat" else "winback",
                        title=f"Клиент нажал «{label}» в Telegram",
                        due_at=due_at,
                        source_ref=f"telegram:message:{message.id}",
                        dedup_key=f"tg:press-task:{message.id}:{press.act}",
                    )
                )
        await self._store.append_events(events)
        await self._store.create_tasks(tasks)
        missing = await self._outcome_sink.report_many(
            [
                LateOutcome(
                    message.attempt_id,
                    OutcomeKind.ANSWERED,
                    {
                        "purpose": message.purpose,
                        "button": press.act,
                        "message": f"message:{message.id}",
                    },
                )
                for message, press in counted
                if message.attempt_id is not None
            ]
        )
        if missing:  # deleted since the message went out: the press and its event are kept
            log.warning("button presses for attempts no longer stored: %s", sorted(missing))
