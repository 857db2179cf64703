"""Button answers to reminders and win-back messages: recorded once, reported as outcomes."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.deps import BotDeps
from bot.keyboards import REORDER_ACTIONS, WINBACK_ACTIONS
from povtor.db import utcnow
from povtor.domain import EventKind, OutcomeKind
from povtor.ports import NewEvent, NewTask

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


async def on_answer(
    deps: BotDeps, outbox_id: int, act: str, chat_id: int, callback_query_id: str
) -> str:
    """Record a press of ``act`` on message ``outbox_id``; returns the text for the toast."""
    message = await deps.repo.get_outbox(outbox_id)
    if message is None or message.chat_id != chat_id or message.client_id is None:
        return deps.texts("already_answered")
    allowed = REORDER_ACTIONS if message.purpose == "reorder" else WINBACK_ACTIONS
    if act not in allowed or (message.purpose, act) not in _LABELS:
        return deps.texts("already_answered")
    if not await deps.repo.record_press(outbox_id, act, act, chat_id, callback_query_id):
        return deps.texts("already_answered")
    label = deps.texts(_LABELS[(message.purpose, act)])
    await deps.store.append_event(
        NewEvent(
            client_id=message.client_id,
            kind=EventKind.MESSAGE_IN,
            summary=f"Ответ в Telegram: «{label}»",
            ref=f"message:{outbox_id}",
            data={"purpose": message.purpose, "button": act},
            dedup_key=f"tg:press:{outbox_id}:{act}",
        )
    )
    if act in {"repeat", "return"}:
        client = await deps.store.get_client(message.client_id)
        await deps.store.create_task(
            NewTask(
                client_id=message.client_id,
                kind="reorder" if act == "repeat" else "winback",
                title=f"{label}: {client.name or client.external_id}",
                due_at=utcnow() + timedelta(hours=4),
                source_ref=f"telegram:message:{outbox_id}",
                dedup_key=f"tg:press-task:{outbox_id}:{act}",
            )
        )
    if message.attempt_id is not None:
        await deps.outcome_sink.report(
            message.attempt_id,
            OutcomeKind.ANSWERED,
            {"purpose": message.purpose, "button": act, "message": f"message:{outbox_id}"},
        )
    return deps.texts(_ACKS[(message.purpose, act)])
