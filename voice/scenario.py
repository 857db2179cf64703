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

Every call opens with ``disclosure``: who is calling, that it is a robot and that the call is
recorded (the law on advertising and on personal data asks for it). A file without the key gets
``POVTOR_CALL_DISCLOSURE`` or :data:`DEFAULT_DISCLOSURE`, so deleting it cannot silence it;
only ``disclosure: ""`` does, and ``povtor scenario check`` warns about that.

Template values are said the Russian way: numbers and dates become words by themselves
(``{{ days_since }}`` -> "сорок", a date -> "двенадцатого марта"); filters decline names and
say the rest: ``{{ company|gent }}``, ``{{ name|datv }}`` (nomn gent datv accs ablt loct),
``{{ amount|money }}``, ``{{ phone|phone }}``, ``{{ at|time }}``, ``{{ n|count("день") }}``.

A step with ``transfer: true`` says its text ("Соединяю вас с менеджером") and hands the client
to a person (``transfer_to``, else ``POVTOR_CALL_TRANSFER_TO``): by SIP REFER, or where the
trunk refuses it, by a second call joined through Povtor; if the transfer does not connect, the
robot says ``transfer_failed_say`` and goes on to the step's ``next``.

``handover`` lets the client ask for a person at any question, by voice ("соедините с
менеджером", "позовите оператора", "можно живого человека") or by a keypad key::

    handover:
      key: "0"            # optional; a key no question of the scenario uses
      say: "Соединяю с менеджером, оставайтесь на линии."
      callback_say: "Менеджер перезвонит вам в ближайшее время. Всего доброго!"

The robot says ``say`` and transfers as above; the call then ends (a failed transfer says
``transfer_failed_say`` first). With no number to transfer to, it says ``callback_say`` and a
manager is given a task to call back.

``speech`` picks the voice for one scenario (``engine``: espeak or piper, ``voice``, ``speed``)
and ``recorded``, a folder of human recordings named after the steps (``greeting.wav``,
``score.retry.wav``, ``disclosure.wav``, ``optout_say.wav``, ``later_say.wav``): a prompt
whose file is there is played instead of synthesised, as ``povtor scenario render`` names them.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nlu import spoken
from povtor.domain import Purpose
from povtor.errors import ConfigError

SHIPPED = Path(__file__).parent / "scenarios"
END = "end"
RESERVED = frozenset(
    {
        END, "disclosure", "optout_say", "later_say", "voicemail_say", "transfer_failed_say",
        "handover", "handover_callback",
    }
)  # fmt: skip
DEFAULT_TRANSFER_FAILED = (
    "К сожалению, сейчас не получилось соединить вас с менеджером. "
    "Менеджер перезвонит вам в ближайшее время."
)
DEFAULT_HANDOVER_SAY = "Соединяю с менеджером, оставайтесь на линии."
DEFAULT_CALLBACK_SAY = "Менеджер перезвонит вам в ближайшее время. Всего доброго!"
SCORE_KEYS = frozenset("0123456789*")  # what a score question reads from the keypad
# What templates may use; CallChannel fills them (see voice.call_channel.template_values).
TEMPLATE_VALUES: dict[str, Any] = {
    "name": "Иван Петров",
    "company": "Кофейня «Зерно»",
    "order_date": dt.date(2026, 3, 12),
    "items": "кофе в зёрнах",
    "category": "кофе",
    "days_since": 40,
}
DEFAULT_DISCLOSURE = (
    "Здравствуйте! Вам звонит голосовой робот {{ company|gent }}. Разговор записывается."
)


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


def _said(value: Any) -> Any:
    """What ``{{ value }}`` says: numbers and dates in words, the rest as it is."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else value
    if isinstance(value, int):
        return spoken.number_words(value)
    if isinstance(value, Decimal | float) and value == int(value):
        return spoken.number_words(int(value))
    if isinstance(value, dt.datetime):
        return f"{spoken.date_words(value, today=_today())} в {spoken.time_words(value)}"
    if isinstance(value, dt.date):
        return spoken.date_words(value, today=_today())
    if isinstance(value, dt.time):
        return spoken.time_words(value)
    return value


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _date(value: Any) -> str:
    if isinstance(value, str):
        value = dt.date.fromisoformat(value) if value else None
    return spoken.date_words(value, today=_today()) if value else ""


_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, finalize=_said)
_env.filters.update(
    {case: (lambda v, c=case: spoken.inflect_cached(str(v), c)) for case in spoken.CASES}
)
_env.filters.update(
    money=spoken.money_words,
    phone=lambda v: spoken.phone_words(str(v)) if v else "",
    time=spoken.time_words,
    date=_date,
    number=lambda v, case="nomn", gender="m": spoken.number_words(int(v), case, gender),
    count=lambda v, noun, case="nomn": spoken.count_words(int(v), noun, case),
)


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
    barge_in: bool = True  # the client talking over the question stops it
    save: str | None = None  # free answers: data["<save>_text"], data["<save>_category"]
    # after saying `say`, hand the client to a person (SIP REFER to the scenario's
    # `transfer_to` or POVTOR_CALL_TRANSFER_TO); connected: the robot leaves the call,
    # otherwise it says `transfer_failed_say` and goes on to `next`
    transfer: bool = False
    next: str | dict[str, str] = END

    @model_validator(mode="after")
    def _check(self) -> Step:
        if not self.say and self.audio is None:
            raise ValueError("a step needs `say` (text) or `audio` (a WAV)")
        if self.ask is not AskKind.INTENT and self.keys:
            raise ValueError("`keys` are for `ask: intent` steps")
        if self.transfer and self.ask is not None:
            raise ValueError("a `transfer` step cannot also `ask`")
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


class Handover(BaseModel):
    """The client asks for a person at any question: by voice, or by a keypad key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    voice: bool = True  # a spoken request ("соедините с менеджером") hands over
    key: str | None = None  # a keypad key that does the same at any question ("0")
    say: str = DEFAULT_HANDOVER_SAY  # said before the transfer
    callback_say: str = DEFAULT_CALLBACK_SAY  # no number to transfer to: a manager calls back

    @model_validator(mode="after")
    def _check(self) -> Handover:
        if self.key is not None and (len(self.key) != 1 or self.key not in "0123456789*#"):
            raise ValueError(f"`key`: {self.key!r} is not a keypad key")
        if not self.voice and self.key is None:
            raise ValueError("`voice: false` needs a `key`, or the client cannot ask")
        return self

    def clash(self, name: str, step: Step) -> str | None:
        """Why ``key`` cannot be the handover key at ``step``, if it cannot."""
        if self.key is None:
            return None
        if step.ask is AskKind.SCORE and self.key in SCORE_KEYS:
            return (
                f"`handover.key` {self.key!r} is also a score at step {name!r}: "
                "use '#' or leave the key out"
            )
        if self.key in step.keys:
            return f"`handover.key` {self.key!r} is also an answer in step {name!r}'s `keys`"
        return None


class Speech(BaseModel):
    """A scenario's own voice; what is not set comes from the ``POVTOR_CALL_TTS_*`` settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: Literal["espeak", "piper"] | None = None
    voice: str | None = None  # espeak-ng voice, or a Piper voice name or .onnx path
    speed: float | None = Field(default=None, gt=0)  # espeak words/min; Piper: 1.0 = as trained
    recorded: Path | None = None  # folder of <step>.wav human recordings (relative to the file)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    purpose: Purpose
    start: str
    disclosure: str | None = None  # None: the setting or DEFAULT_DISCLOSURE (see load_scenario)
    speech: Speech = Speech()
    optout_say: str = "Хорошо, мы больше не будем вам звонить. Всего доброго!"
    later_say: str = "Хорошо, мы перезвоним в другое время. Всего доброго!"
    # said to an answering machine after its greeting; None: hang up on it at once
    voicemail_say: str | None = None
    # who a `transfer` step hands the client to (a number on the trunk or a SIP URI); None: the
    # setting POVTOR_CALL_TRANSFER_TO
    transfer_to: str | None = None
    transfer_failed_say: str = DEFAULT_TRANSFER_FAILED  # the transfer did not connect
    # the client may ask for a person at any question (None: such a request is no answer)
    handover: Handover | None = None
    steps: dict[str, Step]
    folder: Path | None = Field(default=None, exclude=True)  # where `audio` paths are relative to

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if END in self.steps:
            raise ValueError(f"`{END}` is reserved: it means hang up")
        taken = RESERVED & set(self.steps)
        if taken:
            raise ValueError(f"{sorted(taken)}: reserved names (the texts outside the steps)")
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
        if self.handover is not None:
            for name, step in self.steps.items():
                clash = self.handover.clash(name, step)
                if clash:
                    raise ValueError(clash)
        for name, text in self.texts():
            try:
                render(text, TEMPLATE_VALUES)
            except TemplateError as err:
                raise ValueError(f"{name}: {err}") from err
        return self

    def texts(self) -> list[tuple[str, str]]:
        """Every text the robot may say, as (where, template)."""
        found = [("disclosure", self.disclosure)] if self.disclosure else []
        found += [("optout_say", self.optout_say), ("later_say", self.later_say)]
        found += [("voicemail_say", self.voicemail_say)] if self.voicemail_say else []
        if self.handover is not None or any(step.transfer for step in self.steps.values()):
            found.append(("transfer_failed_say", self.transfer_failed_say))
        if self.handover is not None:
            found.append(("handover.say", self.handover.say))
            found.append(("handover.callback_say", self.handover.callback_say))
        for name, step in self.steps.items():
            found += [(f"{name}.say", step.say)] if step.say else []
            found += [(f"{name}.retry_say", step.retry_say)] if step.retry_say else []
        return found

    def audio_path(self, audio: Path) -> Path:
        return audio if audio.is_absolute() or self.folder is None else self.folder / audio

    def recorded(self, prompt: str) -> Path | None:
        """The human recording of a prompt (``greeting``, ``score.retry``...), if there is one."""
        if self.speech.recorded is None:
            return None
        path = self.audio_path(self.speech.recorded) / f"{prompt}.wav"
        return path if path.is_file() else None


def render(template: str, values: Mapping[str, Any]) -> str:
    """A step's text for one client; whitespace collapsed (templates span YAML lines)."""
    return " ".join(_compiled(template).render(**values).split())


@functools.lru_cache(maxsize=512)
def _compiled(template: str) -> Template:
    """A scenario's texts are few and said to every client: each is compiled once (compiling
    costs milliseconds, on the event loop, between the client's answer and the next prompt)."""
    return _env.from_string(template)


def parse_template(template: str) -> None:
    """Raise ``jinja2.TemplateSyntaxError`` when ``template`` does not parse."""
    _env.parse(template)


def load_scenario(path: Path, disclosure: str | None = None) -> Scenario:
    """Read and check a scenario file; ConfigError says what is wrong and where.

    A file without ``disclosure`` gets ``disclosure`` (the setting) or the default one."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"scenario {path}: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"scenario {path}: not a YAML mapping")
    if data.get("disclosure") is None:
        data["disclosure"] = disclosure or DEFAULT_DISCLOSURE
    try:
        scenario = Scenario.model_validate({**data, "folder": path.parent})
    except ValidationError as err:
        raise ConfigError(f"scenario {path}: {err}") from err
    recorded = scenario.speech.recorded
    if recorded is not None and not scenario.audio_path(recorded).is_dir():
        raise ConfigError(f"scenario {path}: speech.recorded: no folder {recorded}")
    for name, step in scenario.steps.items():
        for audio in (step.audio, step.retry_audio):
            if audio is not None and not scenario.audio_path(audio).is_file():
                raise ConfigError(f"scenario {path}: step {name!r}: no file {audio}")
    return scenario


def load_scenarios(
    folder: Path | None = None, disclosure: str | None = None
) -> dict[Purpose, Scenario]:
    """One scenario per purpose: the business's own file where it exists, else the shipped one."""
    found: dict[Purpose, Scenario] = {}
    for purpose in Purpose:
        own = folder / f"{purpose.value}.yaml" if folder is not None else None
        path = own if own is not None and own.is_file() else SHIPPED / f"{purpose.value}.yaml"
        scenario = load_scenario(path, disclosure)
        if scenario.purpose is not purpose:
            raise ConfigError(f"scenario {path}: purpose is {scenario.purpose}, not {purpose}")
        found[purpose] = scenario
    return found
