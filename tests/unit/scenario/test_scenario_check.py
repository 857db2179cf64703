"""`povtor scenario check`: each problem of a script with its line; shipped scripts are clean."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from voice.scenario import SHIPPED
from voice.scenario_check import check_file

GOOD = """\
purpose: nps
start: greeting
disclosure: >-
  Здравствуйте! Вам звонит голосовой робот {{ company|gent }}. Разговор записывается.
steps:
  greeting:
    say: Добрый день, {{ name }}!
    next: score
  score:
    ask: score
    say: Оцените нас от нуля до десяти.
    next:
      promoter: thanks
      none: bye
  thanks:
    say: Спасибо!
    next: end
  bye:
    say: До свидания!
"""


def problems(tmp_path: Path, text: str) -> list[tuple[int, str, str]]:
    path = tmp_path / "nps.yaml"
    path.write_text(text, encoding="utf-8")
    found = check_file(path)
    assert all(str(p).startswith(f"{path}:{p.line}: {p.level}: ") for p in found)
    return [(p.line, p.level, p.message) for p in found]


@pytest.mark.parametrize("name", ["nps", "reorder", "winback"])
def test_shipped_scenarios_pass_the_check_without_a_warning(name: str) -> None:
    assert check_file(SHIPPED / f"{name}.yaml") == []


def test_a_good_file_has_no_problem(tmp_path: Path) -> None:
    assert problems(tmp_path, GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "level", "says"),
    [
        ("next: score", "next: scor", 8, "error", "`next` names no step 'scor'"),
        ("promoter: thanks", "promoter: thank", 13, "error", "names no step 'thank'"),
        ("none: bye", "none: thanks", 18, "error", "'bye' is never reached"),
        ("start: greeting", "start: hello", 2, "error", "`start` names no step 'hello'"),
        ("{{ name }}", "{{ nam }}", 7, "error", "'nam' is undefined"),
        ("{{ name }}", "{{ name ", 7, "error", "template:"),
        ("{{ name }}", "{{ name|genitive }}", 7, "error", "genitive"),
        ("promoter: thanks", "superfan: thanks", 12, "error", "unknown answers"),
        ("    ask: score\n", "    ask: scores\n", 10, "error", "step score.ask"),
        ("    say: Спасибо!\n", "    sey: Спасибо!\n", 16, "error", "step thanks.sey"),
        ("purpose: nps", "purpose: survey", 1, "error", "purpose 'survey'"),
        (
            "start: greeting\n",
            "start: greeting\nvoice: piper\n",
            3,
            "error",
            "unknown key 'voice'",
        ),
        ("steps:\n", "steps:\n  end:\n    say: Пока\n", 6, "error", "'end' is reserved"),
        ("next: score", "next: score\n    audio: hello.wav", 9, "error", "no file hello.wav"),
        ("  greeting:\n", "  greeting\n", 7, "error", "YAML:"),
    ],
)
def test_each_problem_is_reported_on_its_line(
    tmp_path: Path, old: str, new: str, line: int, level: str, says: str
) -> None:
    assert old in GOOD
    found = problems(tmp_path, GOOD.replace(old, new, 1))
    assert any(n == line and v == level and says in m for n, v, m in found), found


def test_an_empty_disclosure_is_a_warning_not_silence(tmp_path: Path) -> None:
    text = GOOD.replace(
        "disclosure: >-\n  Здравствуйте! Вам звонит голосовой робот {{ company|gent }}. "
        "Разговор записывается.\n",
        'disclosure: ""\n',
    )
    assert problems(tmp_path, text) == [
        (3, "warning", problems(tmp_path, text)[0][2]),
    ]
    assert "does not say who is calling" in problems(tmp_path, text)[0][2]


@pytest.mark.parametrize(
    ("said", "missing"),
    [
        ("Здравствуйте! Вам звонит {{ company }}. Разговор записывается.", "robot"),
        ("Здравствуйте! Вам звонит голосовой робот {{ company|gent }}.", "recorded"),
        ("Здравствуйте! Это голосовой робот. Разговор записывается.", "company"),
    ],
)
def test_a_disclosure_that_leaves_out_a_part_is_warned_about(
    tmp_path: Path, said: str, missing: str
) -> None:
    text = GOOD.replace(
        ">-\n  Здравствуйте! Вам звонит голосовой робот {{ company|gent }}. "
        "Разговор записывается.",
        f'"{said}"',
    )
    found = problems(tmp_path, text)
    assert [level for _, level, _ in found] == ["warning"], found
    assert missing in found[0][2]


def test_a_file_without_a_disclosure_gets_the_default_one_and_no_warning(tmp_path: Path) -> None:
    text = GOOD.replace(
        "disclosure: >-\n  Здравствуйте! Вам звонит голосовой робот {{ company|gent }}. "
        "Разговор записывается.\n",
        "",
    )
    assert problems(tmp_path, text) == []


def test_a_recording_of_a_text_with_client_values_is_warned_about(tmp_path: Path) -> None:
    recorded = tmp_path / "prompts"
    recorded.mkdir()
    for name in ("greeting", "thanks"):
        with wave.open(str(recorded / f"{name}.wav"), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(b"\0\0" * 800)
    text = GOOD.replace("start: greeting\n", "start: greeting\nspeech: {recorded: prompts}\n")
    found = problems(tmp_path, text)
    assert [(line, level) for line, level, _ in found] == [(8, "warning")], found
    assert "greeting.wav is played to every client" in found[0][2]


def test_several_problems_are_all_reported_in_line_order(tmp_path: Path) -> None:
    text = GOOD.replace("next: score", "next: scor").replace("{{ name }}", "{{ nam }}")
    found = problems(tmp_path, text)
    assert [line for line, _, _ in found] == sorted(line for line, _, _ in found)
    assert len([f for f in found if f[1] == "error"]) >= 3  # name, next, unreachable steps


@pytest.mark.parametrize(
    ("handover", "line", "says"),
    [
        ('handover:\n  key: "0"\n', 6, "`handover.key` '0' is also a score at step 'score'"),
        ('handover:\n  key: "*"\n', 6, "'*' is also a score"),
        ('handover:\n  key: "00"\n', 6, "handover.key: `key`: '00' is not a keypad key"),
        ("handover:\n  voice: false\n", 6, "handover.voice: `voice: false` needs a `key`"),
        ("handover:\n  callback_say: Перезвоним, {{ nam }}\n", 6, "'nam' is undefined"),
        ("handover:\n  sey: Соединяю\n", 6, "handover.sey"),
    ],
)
def test_a_handover_the_client_could_not_use_is_reported_on_its_line(
    tmp_path: Path, handover: str, line: int, says: str
) -> None:
    text = GOOD.replace("steps:\n", handover + "steps:\n", 1)
    found = problems(tmp_path, text)
    assert any(n == line and v == "error" and says in m for n, v, m in found), found


def test_a_handover_key_no_question_uses_is_good(tmp_path: Path) -> None:
    text = GOOD.replace("steps:\n", 'handover:\n  key: "#"\nsteps:\n', 1)
    assert problems(tmp_path, text) == []


def test_a_handover_key_that_is_an_answer_of_an_intent_question_is_an_error(
    tmp_path: Path,
) -> None:
    reorder = (SHIPPED / "reorder.yaml").read_text(encoding="utf-8")
    found = problems(tmp_path, reorder.replace('key: "0"', 'key: "3"'))
    assert any("'3' is also an answer in step 'remind'" in m for _, _, m in found), found
