"""Understanding short Russian answers (typed or recognised): score, yes/no intent, reason."""

from nlu.intent import Intent, classify_intent
from nlu.person import asks_for_person
from nlu.reason import ReasonMatch, ReasonResult, classify_reason
from nlu.score import extract_score

__all__ = [
    "Intent",
    "ReasonMatch",
    "ReasonResult",
    "asks_for_person",
    "classify_intent",
    "classify_reason",
    "extract_score",
]
