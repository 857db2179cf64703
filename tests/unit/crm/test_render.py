"""Timeline events as the CRM notes and tasks managers read (Russian), each with its key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm_sync.history.timeline_feed import referenced_id
from crm_sync.outbound.render import (
    MAX_TEXT,
    EventFacts,
    Unrenderable,
    event_key,
    render,
)
from crm_sync.outbound.selection import SyncKind
from povtor.domain import (
    ChannelKind,
    EventKind,
    NpsResponse,
    ReasonCategory,
    Task,
    TimelineEvent,
)
from povtor.ports import CrmNote, CrmTask

AT = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
MSK = ZoneInfo("Europe/Moscow")


def event(kind: EventKind, summary: str = "", **data: Any) -> TimelineEvent:
    return TimelineEvent(id=42, client_id=7, kind=kind, at=AT, summary=summary, data=data)


def note(kind: SyncKind, facts: EventFacts) -> str:
    rendered = render(kind, facts, MSK)
    assert isinstance(rendered, CrmNote)
    assert rendered.key == "[povtor:42]"
    assert rendered.text.endswith("04.05.2026 12:30 · Повтор [povtor:42]")
    return rendered.text


def test_an_nps_answer_shows_score_group_reason_category_and_channel() -> None:
    answer = NpsResponse(
        id=3,
        client_id=7,
        score=4,
        channel=ChannelKind.CALL,
        answered_at=AT,
        reason_text="Долго везли",
        reason_category=ReasonCategory.DELIVERY,
    )
    text = note(SyncKind.NPS, EventFacts(event(EventKind.NPS_ANSWER, score=4), nps=answer))
    assert text.splitlines()[:4] == [
        "Оценка NPS: 4 из 10 (критик)",
        "Причина: «Долго везли»",
        "Категория: доставка",
        "Канал: звонок",
    ]


@pytest.mark.parametrize(
    ("score", "group"), [(10, "промоутер"), (9, "промоутер"), (8, "нейтральный"), (0, "критик")]
)
def test_nps_groups(score: int, group: str) -> None:
    text = note(SyncKind.NPS, EventFacts(event(EventKind.NPS_ANSWER, score=score)))
    assert text.startswith(f"Оценка NPS: {score} из 10 ({group})")


def test_an_answer_without_a_score_says_so() -> None:
    text = note(SyncKind.NPS, EventFacts(event(EventKind.NPS_ANSWER, score=None)))
    assert text.startswith("Ответ на опрос NPS без оценки")


def test_an_outcome_keeps_the_timeline_summary_and_adds_the_answer() -> None:
    facts = EventFacts(
        event(
            EventKind.NOTE,
            "Обзвон (повторный заказ, звонок): ответил",
            outcome="answered",
            intent="later",
            attempt_no=2,
        )
    )
    assert note(SyncKind.OUTCOME, facts).splitlines()[:3] == [
        "Обзвон (повторный заказ, звонок): ответил",
        "Ответ: позже",
        "Попытка № 2",
    ]


def test_complaint_opt_out_and_opt_in() -> None:
    complaint = note(SyncKind.COMPLAINT, EventFacts(event(EventKind.COMPLAINT, "Холодная пицца")))
    assert complaint.startswith("Жалоба клиента: «Холодная пицца»")
    opt_out = note(SyncKind.OPT_OUT, EventFacts(event(EventKind.OPT_OUT, "x", source="call")))
    assert opt_out.splitlines()[:2] == [
        "Клиент отказался от контактов: больше не звонить и не писать",
        "Источник: call",
    ]
    opt_in = note(SyncKind.OPT_OUT, EventFacts(event(EventKind.OPT_IN, "x")))
    assert opt_in.startswith("Клиент снова согласен на контакты")


def test_a_task_becomes_a_crm_task_with_its_due_time() -> None:
    task = Task(
        id=5,
        client_id=7,
        kind="detractor",
        title="Низкая оценка NPS (3): перезвонить в течение 24 часов",
        due_at=AT + timedelta(days=1),
        created_at=AT,
        note="Клиент недоволен доставкой",
    )
    rendered = render(SyncKind.TASK, EventFacts(event(EventKind.TASK), task=task), MSK)
    assert isinstance(rendered, CrmTask)
    assert rendered.title == task.title
    assert rendered.due_at == task.due_at
    assert rendered.text.startswith("Клиент недоволен доставкой\n")
    assert rendered.text.endswith("[povtor:42]")


def test_a_task_event_without_its_task_cannot_be_rendered() -> None:
    orphan = TimelineEvent(
        id=42, client_id=7, kind=EventKind.TASK, at=AT, summary="", ref="task:5"
    )
    with pytest.raises(Unrenderable, match="task:5"):
        render(SyncKind.TASK, EventFacts(orphan), MSK)


def test_long_texts_are_cut_but_keep_their_key() -> None:
    rendered = render(
        SyncKind.COMPLAINT, EventFacts(event(EventKind.COMPLAINT, "а" * 10_000)), MSK
    )
    assert len(rendered.text) <= MAX_TEXT
    assert rendered.text.endswith("… [povtor:42]")


def test_keys_and_references() -> None:
    assert event_key(12) == "[povtor:12]"
    assert referenced_id("task:12", "task") == 12
    assert referenced_id("nps:3", "task") is None
    assert referenced_id("task:x", "task") is None
    assert referenced_id(None, "task") is None
