"""`povtor nlu score|intent|reason` as a real process: one JSON object per input line, exactly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(command: str, stdin: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "app", "nlu", command],
        input=stdin.encode(),
        capture_output=True,
        timeout=60,
        check=True,
        env={**os.environ, "LC_ALL": "C", "LANG": "C"},  # output is UTF-8 whatever the locale
    )
    return done.stdout.decode("utf-8").splitlines()


@pytest.mark.parametrize(
    ("command", "stdin", "lines"),
    [
        (
            "score",
            "ставлю 9\nвосемьдесят\n\nДесять из десяти!\nне знаю\n8/10",
            [
                '{"score": 9}',
                '{"score": null}',
                '{"score": null}',
                '{"score": 10}',
                '{"score": null}',
                '{"score": 8}',
            ],
        ),
        (
            "intent",
            "перезвоните завтра\nда\n\nне звоните мне больше\nнет\r\nне знаю\n",
            [
                '{"intent": "later"}',
                '{"intent": "yes"}',
                '{"intent": "unknown"}',
                '{"intent": "optout"}',
                '{"intent": "no"}',
                '{"intent": "unknown"}',
            ],
        ),
        (
            "reason",
            "курьер опоздал\n\nСлишком дорого, у конкурентов дешевле\nвсё отлично\n",
            [
                '{"reason": "delivery", "evidence": ["курьер опоздал"]}',
                '{"reason": "other", "evidence": []}',
                '{"reason": "price", "evidence": ["дорого", "у конкурентов дешевле"]}',
                '{"reason": "other", "evidence": []}',
            ],
        ),
    ],
)
def test_cli_prints_one_json_line_per_answer(command: str, stdin: str, lines: list[str]) -> None:
    assert _run(command, stdin) == lines


def test_cli_prints_nothing_for_empty_input() -> None:
    assert _run("score", "") == []
