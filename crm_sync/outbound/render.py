"""Timeline events as CRM notes and tasks, in Russian for the managers who read them (pure).

Every text ends with a key, ``[povtor:<event id>]``: a push that may have landed before a crash
is found again by it instead of being repeated.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from crm_sync.outbound.selection import SyncKind
from povtor.domain import (
    ReasonCategory,
    nps_group,
)
from povtor.ports import CrmNote, CrmTask, EventRecords

MAX_TEXT = 4000

REASONS_RU = {
    ReasonCategory.SERVICE_QUALITY: "качество обслуживания",
    ReasonCategory.NO_PERSONAL_APPROACH: "нет индивидуального подхода",
    ReasonCategory.MANAGER_COMPETENCE: "компетентность менеджера",
    ReasonCategory.NO_CONVENIENT_CHANNEL: "нет удобного канала связи",
    ReasonCategory.SLOW_PROCESSING: "медленная обработка",
    ReasonCategory.PRODUCT_QUALITY: "качество товара",
    ReasonCategory.PRICE: "цена",
    ReasonCategory.DELIVERY: "доставка",
    ReasonCategory.OTHER: "другое",
}
GROUPS_RU = {"promoter": "промоутер", "passive": "нейтральный", "detractor": "критик"}
CHANNELS_RU = {"telegram": "Telegram", "call": "звонок"}
INTENTS_RU = {"yes": "да", "no": "нет", "later": "позже", "opt_out": "просит не беспокоить"}


class Unrenderable(ValueError):
    """The event lacks what its CRM entry needs (the message says what)."""


EventFacts = EventRecords  # an event and the records it points to, as the feed gives them


def event_key(event_id: int) -> str:
    return f"[povtor:{event_id}]"


def render(kind: SyncKind, facts: EventFacts, tz: ZoneInfo) -> CrmNote | CrmTask:
    event = facts.event
    key = event_key(event.id)
    if kind is SyncKind.TASK:
        return _task(facts, key, tz)
    lines = [_heading(kind, facts), *_details(kind, facts)]
    lines += ["", f"{_when(event.at, tz)} · Повтор {key}"]
    return CrmNote(key=key, text=_bounded("\n".join(lines), key))


def _heading(kind: SyncKind, facts: EventFacts) -> str:
    event = facts.event
    match kind:
        case SyncKind.NPS:
            score = facts.nps.score if facts.nps else event.data.get("score")
            if score is None:
                return "Ответ на опрос NPS без оценки"
            score = int(score)
            group = GROUPS_RU[nps_group(score).value] if 0 <= score <= 10 else "?"
            return f"Оценка NPS: {score} из 10 ({group})"
        case SyncKind.COMPLAINT:
            return f"Жалоба клиента: «{event.summary}»"
        case SyncKind.OPT_OUT:
            if event.kind == "opt_in":
                return "Клиент снова согласен на контакты"
            return "Клиент отказался от контактов: больше не звонить и не писать"
        case SyncKind.MESSAGE_IN:
            return f"Сообщение клиента: «{event.summary}»"
    return event.summary or "Событие в Повторе"


def _details(kind: SyncKind, facts: EventFacts) -> list[str]:
    data = facts.event.data
    lines: list[str] = []
    if kind is SyncKind.NPS and facts.nps is not None:
        if facts.nps.reason_text:
            lines.append(f"Причина: «{facts.nps.reason_text}»")
        if facts.nps.reason_category is not None:
            lines.append(f"Категория: {REASONS_RU[facts.nps.reason_category]}")
        lines.append(f"Канал: {CHANNELS_RU.get(facts.nps.channel.value, facts.nps.channel)}")
    elif kind is SyncKind.OUTCOME:
        intent = data.get("intent")
        if intent:
            lines.append(f"Ответ: {INTENTS_RU.get(str(intent), str(intent))}")
        if data.get("complaint"):
            lines.append(f"Жалоба: «{data['complaint']}»")
        if data.get("attempt_no") and int(data["attempt_no"]) > 1:
            lines.append(f"Попытка № {int(data['attempt_no'])}")
    elif kind is SyncKind.OPT_OUT and data.get("source"):
        lines.append(f"Источник: {data['source']}")
    return lines


def _task(facts: EventFacts, key: str, tz: ZoneInfo) -> CrmTask:
    task = facts.task
    if task is None:
        raise Unrenderable(f"{facts.event.ref or 'task'}: the task is not in the store")
    lines = [task.note] if task.note else []
    lines.append(f"Поставлена в Повторе {_when(task.created_at or facts.event.at, tz)} {key}")
    return CrmTask(
        key=key,
        title=task.title[:250],
        text=_bounded("\n".join(lines), key),
        due_at=task.due_at,
    )


def _when(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%d.%m.%Y %H:%M")


def _bounded(text: str, key: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - len(key) - 3] + "… " + key
