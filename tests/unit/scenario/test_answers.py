"""Reading phone answers: words and keypad digits to scores and intents."""

from __future__ import annotations

import pytest

from voice.answers import from_keys, from_words, score_from_keys
from voice.scenario import AskKind

REORDER_KEYS = {"1": "yes", "2": "no", "3": "later"}


@pytest.mark.parametrize(
    ("kind", "text", "label", "score"),
    [
        (AskKind.SCORE, "девять", "promoter", 9),
        (AskKind.SCORE, "ну восемь наверное", "passive", 8),
        (AskKind.SCORE, "три", "detractor", 3),
        (AskKind.SCORE, "не знаю", None, None),
        (AskKind.SCORE, "перезвоните позже", "later", None),
        (AskKind.SCORE, "не звоните мне больше", "optout", None),
        (AskKind.INTENT, "да, конечно", "yes", None),
        (AskKind.INTENT, "нет, не нужно", "no", None),
        (AskKind.INTENT, "перезвоните завтра", "later", None),
        (AskKind.INTENT, "не звоните мне больше", "optout", None),
        (AskKind.INTENT, "а кто это", None, None),
        (AskKind.FREE, "доставка долгая", "answered", None),
        (AskKind.FREE, "", None, None),
        (AskKind.FREE, "больше не звоните", "optout", None),
    ],
)
def test_words(kind: AskKind, text: str, label: str | None, score: int | None) -> None:
    answer = from_words(kind, text)
    assert (answer.label if answer else None) == label
    assert (answer.score if answer else None) == score


@pytest.mark.parametrize(
    ("keys", "score"), [("*", 10), ("10", 10), ("0", 0), ("9", 9), ("#", None), ("55", None)]
)
def test_score_keys(keys: str, score: int | None) -> None:
    assert score_from_keys(keys) == score


@pytest.mark.parametrize(
    ("keys", "label"), [("1", "yes"), ("2", "no"), ("3", "later"), ("4", None)]
)
def test_intent_keys(keys: str, label: str | None) -> None:
    answer = from_keys(AskKind.INTENT, keys, REORDER_KEYS)
    assert (answer.label if answer else None) == label
    assert answer is None or answer.via == "keypad"
