"""Client conversations that span messages: NPS score and follow-up, win-back, complaint.

The state lives in the bot's table, so a worker restarted in the middle picks the answer up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

from bot.alerts import Alerts
from bot.chat_state import ChatStates
from bot.delivery import Sender
from bot.outbox_store import OutboxStore
from bot.press_store import PressStore
from bot.records import ChatState, ChatStep, OutboxMessage
from bot.texts import Texts
from nlu import classify_reason, extract_score
from nlu.reason import reason_category
from povtor.db import utcnow
from povtor.domain import ChannelKind, Client, EventKind, NpsGroup, OutcomeKind, nps_group
from povtor.ports import HistoryStore, NewEvent, NewNpsResponse, OutcomeSink

log = logging.getLogger(__name__)
# The outreach engine opens a task per attempt answered by a detractor under this key;
# the bot's alert reuses it so a detractor yields one task.
OUTREACH_TASK_KEY = "outreach:task:{attempt}"


T = TypeVar("T")


async def _cpu(func: Callable[..., T], *args: Any) -> T:
    """Run pure CPU work (NLU, lemmatisation) off the event loop."""
    return await asyncio.to_thread(func, *args)


class Survey:
    """The conversations of one bot: what each chat is asked and what its answers become."""

    def __init__(
        self,
        store: HistoryStore,
        states: ChatStates,
        presses: PressStore,
        outbox: OutboxStore,
        outcome_sink: OutcomeSink,
        alerts: Alerts,
        sender: Sender,
        texts: Texts,
        bot: Bot,
    ) -> None:
        self._store = store
        self._states = states
        self._presses = presses
        self._outbox = outbox
        self._outcome_sink = outcome_sink
        self._alerts = alerts
        self._sender = sender
        self._texts = texts
        self._bot = bot

    async def _say(
        self, chat_id: int, key: str, client: Client | None = None, /, **values: Any
    ) -> None:
        await self._sender.send(
            chat_id,
            self._texts(key, **values),
            purpose="reply",
            client_id=client.id if client else None,
        )

    async def on_score(
        self,
        client: Client,
        question: OutboxMessage,
        score: int,
        press_id: str,
    ) -> bool:
        """A score for the survey message ``question`` (button or typed); False if scored
        already."""
        if not await self._presses.record_press(
            question.id, "score", str(score), question.chat_id, press_id
        ):
            return False
        await self._states.set_state(
            ChatState(
                chat_id=question.chat_id,
                step=ChatStep.NPS_REASON,
                client_id=client.id,
                attempt_id=question.attempt_id,
                message_id=question.id,
                score=score,
                data={"scored_at": utcnow().isoformat()},
            )
        )
        if question.attempt_id is not None:
            await self._outcome_sink.report(
                question.attempt_id, OutcomeKind.ANSWERED, {"purpose": "nps", "score": score}
            )
        if question.message_id is not None:
            try:
                await self._bot.edit_message_text(
                    text=f"{question.text}\n\n{self._texts('nps_scored', score=score)}",
                    chat_id=question.chat_id,
                    message_id=question.message_id,
                )
            except TelegramBadRequest as err:
                if "not modified" not in err.message:
                    log.warning("could not mark the survey message: %s", err.message)
        promoter = nps_group(score) is NpsGroup.PROMOTER
        follow_up = "nps_ask_high" if promoter else "nps_ask_improve"
        await self._say(question.chat_id, follow_up, client)
        return True

    async def _finish_nps(self, client: Client, state: ChatState, reason: str | None) -> None:
        score = state.score
        category = await _cpu(reason_category, reason, score) if reason else None
        scored_at = state.data.get("scored_at")
        answered_at = datetime.fromisoformat(scored_at) if scored_at else None
        await self._store.record_nps(
            NewNpsResponse(
                client_id=client.id,
                score=score,
                channel=ChannelKind.TELEGRAM,
                reason_text=reason,
                reason_category=category,
                source_kind="message",
                source_id=f"telegram:{state.message_id}",
                answered_at=answered_at,
                dedup_key=f"tg:nps:{state.message_id}",
            )
        )
        await self._states.clear_state(state.chat_id)
        if score is not None and nps_group(score) is NpsGroup.DETRACTOR:
            await self._alerts.raise_alert(
                client,
                kind="detractor",
                answer=reason or "",
                score=score,
                dedup=f"nps:{state.message_id}",
                task_key=OUTREACH_TASK_KEY.format(attempt=state.attempt_id)
                if state.attempt_id
                else None,
            )

    async def close_pending(self, chat_id: int) -> None:
        """Before the chat is asked something else: keep a score whose reason never came."""
        state = await self._states.get_state(chat_id)
        if state is not None and state.step is ChatStep.NPS_REASON and state.client_id is not None:
            client = await self._store.get_client(state.client_id)
            await self._finish_nps(client, state, None)

    async def flush_unanswered(self, older_than: timedelta) -> int:
        """Record scores whose follow-up question was never answered (score only)."""
        stale = await self._states.stale_states(ChatStep.NPS_REASON, utcnow() - older_than)
        for state in stale:
            if state.client_id is not None:
                client = await self._store.get_client(state.client_id)
                await self._finish_nps(client, state, None)
        return len(stale)

    async def on_text(self, client: Client, chat_id: int, message_id: int, text: str) -> None:
        """A typed (or transcribed) message from a linked client."""
        state = await self._states.get_state(chat_id)
        if state is not None and state.step is ChatStep.NPS_SCORE and state.message_id is not None:
            score = await _cpu(extract_score, text)
            question = await self._outbox.get_outbox(state.message_id)
            if score is None or question is None:
                await self._say(chat_id, "nps_need_score", client)
                return
            await self.on_score(client, question, score, f"text:{message_id}")
            return
        if state is not None and state.step is ChatStep.NPS_REASON:
            await self._finish_nps(client, state, text)
            await self._say(chat_id, "nps_thanks", client)
            return
        if state is not None and state.step is ChatStep.WINBACK_REASON:
            category = (await _cpu(classify_reason, text)).category
            await self._store.record_nps(
                NewNpsResponse(
                    client_id=client.id,
                    score=None,
                    channel=ChannelKind.TELEGRAM,
                    reason_text=text,
                    reason_category=category,
                    source_kind="message",
                    source_id=f"telegram:{state.message_id}",
                    dedup_key=f"tg:winback:{state.message_id}",
                )
            )
            await self._states.set_state(
                ChatState(
                    chat_id=chat_id,
                    step=ChatStep.WINBACK_RETURN,
                    client_id=client.id,
                    attempt_id=state.attempt_id,
                    message_id=state.message_id,
                    score=None,
                )
            )
            await self._say(chat_id, "winback_ask_return", client)
            return
        if state is not None and state.step is ChatStep.WINBACK_RETURN:
            await self._store.append_event(
                NewEvent(
                    client_id=client.id,
                    kind=EventKind.MESSAGE_IN,
                    summary=f"Что вернёт клиента: {text}",
                    ref=f"message:{state.message_id}",
                    dedup_key=f"tg:in:{chat_id}:{message_id}",
                )
            )
            await self._states.clear_state(chat_id)
            await self._say(chat_id, "nps_thanks", client)
            return
        if state is not None and state.step is ChatStep.COMPLAINT:
            await self.complaint(client, chat_id, message_id, text)
            return
        await self._store.append_event(
            NewEvent(
                client_id=client.id,
                kind=EventKind.MESSAGE_IN,
                summary=text[:1000],
                dedup_key=f"tg:in:{chat_id}:{message_id}",
            )
        )
        await self._say(chat_id, "free_text_thanks", client)

    async def complaint(self, client: Client, chat_id: int, message_id: int, text: str) -> None:
        await self._store.append_event(
            NewEvent(
                client_id=client.id,
                kind=EventKind.COMPLAINT,
                summary=text[:1000],
                dedup_key=f"tg:complaint:{chat_id}:{message_id}",
            )
        )
        await self._states.clear_state(chat_id)
        await self._alerts.raise_alert(
            client,
            kind="complaint",
            answer=text,
            score=None,
            dedup=f"complaint:{chat_id}:{message_id}",
        )
        await self._say(chat_id, "complaint_thanks", client)

    async def start_complaint(self, client: Client, chat_id: int) -> None:
        await self.close_pending(chat_id)
        await self._states.set_state(
            ChatState(
                chat_id=chat_id,
                step=ChatStep.COMPLAINT,
                client_id=client.id,
                attempt_id=None,
                message_id=None,
                score=None,
            )
        )
        await self._say(chat_id, "complaint_ask", client)

    async def stop(self, client: Client | None, chat_id: int) -> None:
        """/stop: opt out of every contact, recorded with time and source, confirmed."""
        if client is not None and client.opted_out:
            await self._say(chat_id, "stop_already", client)
            return
        if client is not None:
            await self.close_pending(chat_id)
            await self._store.set_opt_out(client.id, True, source="telegram:/stop")
            await self._states.clear_state(chat_id)
        await self._say(chat_id, "stop_done", client)

    async def waits_for_answer(self, chat_id: int) -> bool:
        state = await self._states.get_state(chat_id)
        return state is not None and state.step in {
            ChatStep.NPS_REASON,
            ChatStep.WINBACK_REASON,
            ChatStep.WINBACK_RETURN,
            ChatStep.COMPLAINT,
        }
