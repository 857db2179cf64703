"""`povtor nlu score|intent|reason`: one answer per stdin line in, one JSON object per line out.

The output is a contract used by checks outside the test suite: `{"score": 9}`, `{"intent":
"later"}`, `{"reason": "delivery", "evidence": ["курьер опоздал"]}`; nothing else on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import typer

app = typer.Typer(
    help="Understand Russian answers: one answer per line on stdin, one JSON object per line out.",
    no_args_is_help=True,
)


def _run(understand: Callable[[str], dict[str, Any]]) -> None:
    # Bytes in and out: UTF-8 whatever the locale, one flushed line per answer (works in a pipe).
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        out.write(json.dumps(understand(line), ensure_ascii=False).encode() + b"\n")
        out.flush()


def _score(line: str) -> dict[str, Any]:
    from nlu.score import extract_score

    return {"score": extract_score(line)}


def _intent(line: str) -> dict[str, Any]:
    from nlu.intent import classify_intent

    return {"intent": classify_intent(line).value}


def _reason(line: str) -> dict[str, Any]:
    from nlu.reason import classify_reason

    result = classify_reason(line)
    return {"reason": result.category.value, "evidence": list(result.evidence)}


@app.command()
def score() -> None:
    """NPS score 0-10 of each answer: {"score": 9} or {"score": null}."""
    _run(_score)


@app.command()
def intent() -> None:
    """Intent of each answer to a yes/no question: yes, no, later, optout or unknown."""
    _run(_intent)


@app.command()
def reason() -> None:
    """Reason category of each comment, with the words that triggered it."""
    _run(_reason)
