"""What a client's answer on the phone means: spoken words or keypad digits in, a decision out.

Pure functions over ``nlu``; the step runner asks again when they return None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nlu import Intent, asks_for_person, classify_intent, extract_score
from povtor.domain import nps_group
from voice.scenario import AskKind

OPTOUT = "optout"
LATER = "later"
PERSON = "person"  # the client asks for a person (the scenario's `handover`)
TEN_KEYS = ("*", "10")  # the keypad has no "10": star, or one then zero


@dataclass(frozen=True, slots=True)
class Answer:
    """``label`` picks the scenario's next step (``promoter``, ``yes``, ``answered``...)."""

    label: str
    via: str  # "voice" or "keypad"
    text: str = ""  # the words, or the digits pressed
    score: int | None = None
    intent: Intent | None = None
    audio: tuple[float, float] | None = None  # where in the call it was said (seconds)


def from_words(kind: AskKind, text: str, *, person: bool = False) -> Answer | None:
    """A recognised utterance; None when it does not answer the question. With ``person``, a
    request for a person ("соедините с менеджером") is an answer to any question; an opt-out
    said with it still wins."""
    intent = classify_intent(text) if text.strip() else Intent.UNKNOWN
    if intent is Intent.OPTOUT:
        return Answer(OPTOUT, "voice", text, intent=intent)
    if person and asks_for_person(text):
        return Answer(PERSON, "voice", text)
    if kind is AskKind.SCORE:
        score = extract_score(text)
        if score is not None:
            return Answer(nps_group(score).value, "voice", text, score=score)
        if intent is Intent.LATER:
            return Answer(LATER, "voice", text, intent=intent)
        return None
    if kind is AskKind.INTENT:
        if intent in (Intent.YES, Intent.NO, Intent.LATER):
            return Answer(intent.value, "voice", text, intent=intent)
        return None
    return Answer("answered", "voice", text) if text.strip() else None


def score_from_keys(keys: str) -> int | None:
    """``*`` or ``10`` is ten, one digit is itself; anything else (``#``, ``55``) is no score."""
    if keys in TEN_KEYS:
        return 10
    if len(keys) == 1 and keys.isdigit():
        return int(keys)
    return None


def from_keys(
    kind: AskKind, keys: str, mapping: Mapping[str, str], person_key: str | None = None
) -> Answer | None:
    """Digits pressed for a question; None when they do not answer it. ``person_key`` asks
    for a person at any question (the scenario check keeps it apart from the answers' keys)."""
    if person_key is not None and keys == person_key:
        return Answer(PERSON, "keypad", keys)
    if kind is AskKind.SCORE:
        score = score_from_keys(keys)
        if score is None:
            return None
        return Answer(nps_group(score).value, "keypad", keys, score=score)
    if kind is AskKind.INTENT and keys in mapping:
        intent = Intent(mapping[keys])
        return Answer(intent.value, "keypad", keys, intent=intent)
    return None


def waits_for_more(kind: AskKind, keys: str) -> bool:
    """After "1" on a score question, a "0" may follow (ten)."""
    return kind is AskKind.SCORE and keys == "1"
