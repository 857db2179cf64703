"""Call scenarios: what the robot says and asks, step by step, as a business can edit it.

A scenario is a YAML file (shipped ones in ``voice/scenarios/<purpose>.yaml``; a business puts
its own copy in ``POVTOR_CALL_SCENARIOS_DIR``). Each step says a text (a Jinja2 template over
the client's data) or plays a recorded WAV, and an ``ask`` step then waits for the answer::

    start: greeting
    steps:
      greeting: {say: "Здравствуйте!", next: score}
      score:
        ask: score              # score | intent | free
        say: "Оцените нас от нуля до десяти."
        retry_say: "Не расслышал. Назовите оценку от нуля до десяти."
        next: {promoter: praise, passive: improve, detractor: improve, none: bye}
      bye: {say: "Спасибо! До свидания.", next: end}

``next`` is a step id, ``end``, or a map from the answer to a step id. Answers: for ``score``
``promoter``/``passive``/``detractor``; for ``intent`` ``yes``/``no``/``later``/``unknown``;
for ``free`` ``answered``; ``none`` when nothing came after the retries, ``default`` for the
rest. A refusal ("не звоните мне больше") ends any scenario with ``optout_say``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from povtor.domain import Purpose
from povtor.errors import ConfigError

SHIPPED = Path(__file__).parent / "scenarios"
END = "end"
# What templates may use; CallChannel fills them (see voice.call_channel.template_values).
TEMPLATE_VALUES: dict[str, Any] = {
    "name": "Иван Петров",
    "company": "нашей компании",
    "order_date": "12 марта",
    "items": "кофе в зёрнах",
    "category": "кофе",
    "days_since": 40,
}


class AskKind(StrEnum):
    SCORE = "score"  # 0..10 by voice or keypad
    INTENT = "intent"  # yes / no / later by voice or keypad
    FREE = "free"  # a free answer: its text and reason category


ANSWERS: dict[AskKind, frozenset[str]] = {
    AskKind.SCORE: frozenset({"promoter", "passive", "detractor"}),
    AskKind.INTENT: frozenset({"yes", "no", "later", "unknown"}),
    AskKind.FREE: frozenset({"answered"}),
}
_COMMON = frozenset({"none", "default"})
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    say: str = ""
    audio: Path | None = None  # a recorded WAV said instead of ``say`` (relative to the file)
    ask: AskKind | None = None
    retry_say: str | None = None  # said instead of ``say`` when the answer is asked again
    retry_audio: Path | None = None
    retries: int = Field(default=1, ge=0, le=3)
    wait_s: float = Field(default=6.0, gt=0, le=60)  # silence after the question: no answer
    max_answer_s: float = Field(default=15.0, gt=0, le=120)  # a longer answer is cut here
    keys: dict[str, str] = Field(default_factory=dict)  # keypad digit -> intent answer
    save: str | None = None  # free answers: data["<save>_text"], data["<save>_category"]
    next: str | dict[str, str] = END

    @model_validator(mode="after")
    def _check(self) -> Step:
        if not self.say and self.audio is None:
            raise ValueError("a step needs `say` (text) or `audio` (a WAV)")
        if self.ask is not AskKind.INTENT and self.keys:
            raise ValueError("`keys` are for `ask: intent` steps")
        if self.ask is AskKind.FREE and not self.save:
            raise ValueError("an `ask: free` step needs `save` (the name of the answer)")
        if self.ask is None and isinstance(self.next, dict):
            raise ValueError("only an `ask` step can branch on the answer")
        if isinstance(self.next, dict):
            allowed = ANSWERS[self.ask] | _COMMON if self.ask else _COMMON
            unknown = set(self.next) - allowed
            if unknown:
                raise ValueError(f"unknown answers in `next`: {sorted(unknown)}")
        for digit, answer in self.keys.items():
            if digit not in "0123456789*#" or len(digit) != 1:
                raise ValueError(f"`keys`: {digit!r} is not a keypad key")
            if answer not in ANSWERS[AskKind.INTENT] - {"unknown"}:
                raise ValueError(f"`keys`: {answer!r} is not yes, no or later")
        return self

    def targets(self) -> list[str]:
        return list(self.next.values()) if isinstance(self.next, dict) else [self.next]

    def next_for(self, answer: str) -> str:
        """The step after ``answer``: exact answer, else ``default``, else the end."""
        if isinstance(self.next, str):
            return self.next
        return self.next.get(answer) or self.next.get("default") or END


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    purpose: Purpose
    start: str
    optout_say: str = "Хорошо, мы больше не будем вам звонить. Всего доброго!"
    later_say: str = "Хорошо, мы перезвоним в другое время. Всего доброго!"
    steps: dict[str, Step]
    folder: Path | None = Field(default=None, exclude=True)  # where `audio` paths are relative to

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if END in self.steps:
            raise ValueError(f"`{END}` is reserved: it means hang up")
        if self.start not in self.steps:
            raise ValueError(f"`start`: no step {self.start!r}")
        for name, step in self.steps.items():
            for target in step.targets():
                if target != END and target not in self.steps:
                    raise ValueError(f"step {name!r}: `next` names no step {target!r}")
        reached, todo = set(), [self.start]
        while todo:
            name = todo.pop()
            if name == END or name in reached:
                continue
            reached.add(name)
            todo.extend(self.steps[name].targets())
        unused = set(self.steps) - reached
        if unused:
            raise ValueError(f"steps never reached from `start`: {sorted(unused)}")
        for name, text in self.texts():
            try:
                render(text, TEMPLATE_VALUES)
            except TemplateError as err:
                raise ValueError(f"{name}: {err}") from err
        return self

    def texts(self) -> list[tuple[str, str]]:
        """Every text the robot may say, as (where, template)."""
        found = [("optout_say", self.optout_say), ("later_say", self.later_say)]
        for name, step in self.steps.items():
            found += [(f"{name}.say", step.say)] if step.say else []
            found += [(f"{name}.retry_say", step.retry_say)] if step.retry_say else []
        return found

    def audio_path(self, audio: Path) -> Path:
        return audio if audio.is_absolute() or self.folder is None else self.folder / audio


def render(template: str, values: Mapping[str, Any]) -> str:
    """A step's text for one client; whitespace collapsed (templates span YAML lines)."""
    return " ".join(_env.from_string(template).render(**values).split())


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file; ConfigError says what is wrong and where."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"scenario {path}: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"scenario {path}: not a YAML mapping")
    try:
        scenario = Scenario.model_validate({**data, "folder": path.parent})
    except ValidationError as err:
        raise ConfigError(f"scenario {path}: {err}") from err
    for name, step in scenario.steps.items():
        for audio in (step.audio, step.retry_audio):
            if audio is not None and not scenario.audio_path(audio).is_file():
                raise ConfigError(f"scenario {path}: step {name!r}: no file {audio}")
    return scenario


def load_scenarios(folder: Path | None = None) -> dict[Purpose, Scenario]:
    """One scenario per purpose: the business's own file where it exists, else the shipped one."""
    found: dict[Purpose, Scenario] = {}
    for purpose in Purpose:
        own = folder / f"{purpose.value}.yaml" if folder is not None else None
        path = own if own is not None and own.is_file() else SHIPPED / f"{purpose.value}.yaml"
        scenario = load_scenario(path)
        if scenario.purpose is not purpose:
            raise ConfigError(f"scenario {path}: purpose is {scenario.purpose}, not {purpose}")
        found[purpose] = scenario
    return found
