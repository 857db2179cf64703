"""Closing the loop: detractor and complaint alerts to managers, and what they do with them."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup

from bot.alert_store import AlertStore
from bot.delivery import Sender
from bot.keyboards import alert_keyboard, due_keyboard
from bot.manager_store import ManagerStore
from bot.records import Alert, AlertStatus, Manager
from bot.texts import Texts
from povtor.db import utcnow
from povtor.domain import Client, EventKind, TaskStatus
from povtor.ports import HistoryStore, NewEvent, NewTask

log = logging.getLogger(__name__)


async def client_card(store: HistoryStore, client: Client) -> dict[str, str]:
    orders = await store.list_orders(client.id, limit=1)
    order = ""
    if orders:
        last = orders[0]
        items = ", ".join(i.name for i in last.items[:3])
        order = f"{last.placed_at:%d.%m.%Y}, {last.amount} {last.currency}"
        order += f" ({items})" if items else ""
    return {
        "name": client.name or "—",
        "external_id": client.external_id,
        "phone": client.phones[0] if client.phones else "—",
        "order": order,
    }


class Alerts:
    """Alerts to the active managers, and the buttons of an alert (a manager's press)."""

    def __init__(
        self,
        store: HistoryStore,
        alerts: AlertStore,
        managers: ManagerStore,
        sender: Sender,
        texts: Texts,
        bot: Bot,
    ) -> None:
        self._store = store
        self._alerts = alerts
        self._managers = managers
        self._sender = sender
        self._texts = texts
        self._bot = bot

    async def raise_alert(
        self,
        client: Client,
        *,
        kind: str,
        answer: str,
        score: int | None,
        dedup: str,
        task_key: str | None = None,
    ) -> Alert:
        """Create the store task and alert every active manager once per answer.

        ``task_key``: the task's dedup key when another part may open the same task (the
        outreach engine opens one per attempt answered by a detractor): one task, not two."""
        card = await client_card(self._store, client)
        text = self._texts(f"alert_{kind}", score=score, answer=answer, **card)
        task = await self._store.create_task(
            NewTask(
                client_id=client.id,
                kind=kind,
                title=self._texts(f"alert_task_title_{kind}", score=score, name=card["name"]),
                due_at=utcnow() + timedelta(days=1),
                source_ref=f"telegram:{dedup}",
                note=answer[:1000] or None,
                dedup_key=task_key or f"tg:alert:{dedup}",
            )
        )
        alert, new = await self._alerts.create_alert(
            client_id=client.id, kind=kind, text=text, dedup_key=dedup, task_id=task.id
        )
        if new:
            for manager in await self._managers.managers():
                await self._sender.send(
                    manager.chat_id,
                    text,
                    purpose="alert",
                    dedup_key=f"alert:{alert.id}:{manager.id}",
                    make_markup=lambda outbox_id, a=alert.id: alert_keyboard(self._texts, a),
                )
            log.info("alert #%d (%s) for client #%d", alert.id, kind, client.id)
        return alert

    async def _edit(
        self, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        try:
            await self._bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=message_id, reply_markup=markup
            )
        except TelegramBadRequest as err:
            if "not modified" not in err.message:
                raise

    async def on_alert_button(
        self,
        manager: Manager,
        alert_id: int,
        act: str,
        chat_id: int,
        message_id: int,
    ) -> str:
        """Apply a manager's button press; returns the short answer shown to them."""
        alert = await self._alerts.get_alert(alert_id)
        if alert is None:
            return self._texts("manager_invite_bad")
        texts = self._texts
        if act == "take":
            if not await self._alerts.move_alert(
                alert.id, AlertStatus.TAKEN, manager.name, only_from=AlertStatus.OPEN
            ):
                current = await self._alerts.get_alert(alert.id)
                return texts(
                    "alert_ack_already_taken", manager=(current and current.taken_by) or "—"
                )
            if alert.task_id is not None:
                await self._store.update_task(
                    alert.task_id, status=TaskStatus.IN_PROGRESS, assignee=manager.name
                )
            status = texts("alert_status_taken", manager=manager.name)
            await self._edit(
                chat_id, message_id, f"{alert.text}\n\n{status}", alert_keyboard(texts, alert.id)
            )
            return texts("alert_ack_taken")
        if act == "fu":
            await self._edit(
                chat_id,
                message_id,
                f"{alert.text}\n\n{texts('alert_choose_due')}",
                due_keyboard(texts, alert.id),
            )
            return texts("alert_choose_due")
        if act in {"d1", "d3", "d7"}:
            days = int(act[1:])
            due = utcnow() + timedelta(days=days)
            client = await self._store.get_client(alert.client_id)
            await self._store.create_task(
                NewTask(
                    client_id=alert.client_id,
                    kind="callback",
                    title=texts("followup_task_title", name=client.name or client.external_id),
                    due_at=due,
                    assignee=manager.name,
                    source_ref=f"alert:{alert.id}",
                    dedup_key=f"tg:alert:{alert.id}:followup:{days}",
                )
            )
            await self._alerts.move_alert(
                alert.id, AlertStatus.TAKEN, manager.name, only_from=AlertStatus.OPEN
            )
            due_text = f"{due:%d.%m.%Y}"
            status = texts("alert_status_followup", due=due_text, manager=manager.name)
            await self._edit(
                chat_id, message_id, f"{alert.text}\n\n{status}", alert_keyboard(texts, alert.id)
            )
            return texts("alert_ack_followup", due=due_text)
        if act == "res":
            await self._alerts.move_alert(
                alert.id, AlertStatus.RESOLVED, manager.name, only_from=None
            )
            if alert.task_id is not None:
                await self._store.update_task(
                    alert.task_id, status=TaskStatus.DONE, assignee=alert.taken_by or manager.name
                )
            await self._store.append_event(
                NewEvent(
                    client_id=alert.client_id,
                    kind=EventKind.NOTE,
                    summary=f"Менеджер {manager.name} закрыл обращение",
                    ref=f"task:{alert.task_id}" if alert.task_id else None,
                    dedup_key=f"tg:alert:{alert.id}:resolved",
                )
            )
            status = texts("alert_status_resolved", manager=manager.name)
            await self._edit(chat_id, message_id, f"{alert.text}\n\n{status}", None)
            return texts("alert_ack_resolved")
        return texts("manager_only")
