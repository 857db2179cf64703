"""TelegramChannel: the outreach engine's way to remind, survey and win back through the bot."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.chat_state import ChatStates
from bot.delivery import Sender
from bot.keyboards import nps_keyboard, reorder_keyboard, winback_keyboard
from bot.records import ChatState, ChatStep, OutboxMessage, SendStatus
from bot.survey import Survey
from bot.texts import Texts
from povtor.domain import Attempt, ChannelKind, Client, Outcome, OutcomeKind, Purpose
from povtor.errors import PovtorError
from povtor.ports import HistoryStore

log = logging.getLogger(__name__)


def _money(amount: Any, currency: str) -> str:
    text = f"{amount:,.2f}".replace(",", " ").replace(".00", "")
    return f"{text} ₽" if currency == "RUB" else f"{text} {currency}"


class TelegramChannel:
    """Implements ``povtor.ports.Channel``: one message per attempt, answers come later
    through the ``OutcomeSink``."""

    kind = ChannelKind.TELEGRAM

    def __init__(
        self,
        store: HistoryStore,
        states: ChatStates,
        survey: Survey,
        sender: Sender,
        texts: Texts,
    ) -> None:
        self._store = store
        self._states = states
        self._survey = survey
        self._sender = sender
        self._texts = texts

    async def execute(self, attempt: Attempt, client: Client) -> Outcome:
        if client.opted_out:
            return Outcome(OutcomeKind.FAILED, detail="client opted out")
        if client.telegram_chat_id is None:
            return Outcome(OutcomeKind.UNREACHABLE, detail="no linked Telegram chat")
        if not client.telegram_reachable:
            return Outcome(OutcomeKind.UNREACHABLE, detail="Telegram chat unreachable")
        try:
            message = await self._send(attempt, client, client.telegram_chat_id)
        except PovtorError as err:
            return Outcome(OutcomeKind.FAILED, detail=str(err))
        ref = f"message:{message.id}"
        if message.status is SendStatus.SENT:
            return Outcome(
                OutcomeKind.DELIVERED,
                ref=ref,
                data={"message_id": message.message_id, "outbox_id": message.id},
            )
        await self._states.clear_state(client.telegram_chat_id, message_id=message.id)
        if message.status is SendStatus.UNREACHABLE:
            return Outcome(OutcomeKind.UNREACHABLE, detail=message.error or "", ref=ref)
        return Outcome(OutcomeKind.FAILED, detail=message.error or "not sent", ref=ref)

    async def _send(self, attempt: Attempt, client: Client, chat_id: int) -> OutboxMessage:
        texts = self._texts
        common: dict[str, Any] = {
            "purpose": attempt.purpose.value,
            "client_id": client.id,
            "attempt_id": attempt.id,
            "dedup_key": f"attempt:{attempt.id}:{attempt.attempt_no}",
        }
        if attempt.purpose is Purpose.REORDER:
            text = texts("reorder_reminder", **await self._order_values(client))
            return await self._sender.send(
                chat_id, text, make_markup=lambda oid: reorder_keyboard(texts, oid), **common
            )
        if attempt.purpose is Purpose.NPS:
            text = texts("nps_question", name=client.name)
            return await self._sender.send(
                chat_id,
                text,
                make_markup=nps_keyboard,
                before_send=self._waiting(ChatStep.NPS_SCORE, attempt, client),
                **common,
            )
        text = texts("winback_question", name=client.name)
        return await self._sender.send(
            chat_id,
            text,
            make_markup=lambda oid: winback_keyboard(texts, oid),
            before_send=self._waiting(ChatStep.WINBACK_REASON, attempt, client),
            **common,
        )

    def _waiting(
        self, step: ChatStep, attempt: Attempt, client: Client
    ) -> Callable[[OutboxMessage], Awaitable[None]]:
        """Remember what the chat is asked before the question can be answered."""

        async def remember(message: OutboxMessage) -> None:
            await self._survey.close_pending(message.chat_id)
            await self._states.set_state(
                ChatState(
                    chat_id=message.chat_id,
                    step=step,
                    client_id=client.id,
                    attempt_id=attempt.id,
                    message_id=message.id,
                    score=None,
                )
            )

        return remember

    async def _order_values(self, client: Client) -> dict[str, Any]:
        orders = await self._store.list_orders(client.id, limit=1)
        if not orders:
            return {
                "name": client.name,
                "order": None,
                "order_date": "",
                "items": "",
                "amount": "",
            }
        order = orders[0]
        items = ", ".join(
            f"{i.name} × {i.quantity.normalize():f}" if i.quantity != 1 else i.name
            for i in order.items[:5]
        )
        return {
            "name": client.name,
            "order": order,
            "order_date": f"{order.placed_at:%d.%m.%Y}",
            "items": items,
            "amount": _money(order.amount, order.currency),
        }
