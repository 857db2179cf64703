"""``povtor scenario check``: every problem of a scenario file, each with its file and line.

The loader (:func:`voice.scenario.load_scenario`) stops at the first problem and cannot say on
which line it is; this walks the YAML node tree (PyYAML keeps each node's line) and reports them
all: YAML syntax, unknown keys and values, steps that ``next`` names but do not exist, steps that
are never reached, templates that do not parse or use unknown values, missing recordings. It
warns where a call would break the rules a business must follow: no disclosure at the start
(who calls, that it is a robot, that the call is recorded), and recordings that would say the
same words to every client where the text has client values. The loader is run last, so a file
the check passes always loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError
from pydantic import ValidationError

from povtor.domain import Purpose
from povtor.errors import ConfigError
from voice.scenario import (
    DEFAULT_DISCLOSURE,
    END,
    RESERVED,
    TEMPLATE_VALUES,
    Handover,
    Scenario,
    Speech,
    Step,
    load_scenario,
    parse_template,
    render,
)

Level = Literal["error", "warning"]
_ROBOT = re.compile(r"робот|автоматическ|автоинформатор|голосов\w* помощни|виртуальн", re.I)
_RECORDED = re.compile(r"запис", re.I)
_VALUE = re.compile(r"{{|{%")
_TEXT_FIELDS = ("say", "retry_say")
_SCENARIO_TEXTS = ("disclosure", "optout_say", "later_say", "voicemail_say", "transfer_failed_say")


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    line: int
    level: Level
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.level}: {self.message}"


class _Lines:
    """Line numbers (1-based) of the keys and values of a composed YAML mapping, by path."""

    def __init__(self, root: yaml.Node) -> None:
        self.keys: dict[tuple[str, ...], int] = {(): root.start_mark.line + 1}
        self.values: dict[tuple[str, ...], int] = {}
        self._walk(root, ())

    def _walk(self, node: yaml.Node, at: tuple[str, ...]) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key, value in node.value:
            where = (*at, str(key.value))
            self.keys[where] = key.start_mark.line + 1
            self.values[where] = value.start_mark.line + 1
            self._walk(value, where)

    def key(self, *where: str) -> int:
        for end in range(len(where), -1, -1):
            if where[:end] in self.keys:
                return self.keys[where[:end]]
        return 1

    def value(self, *where: str) -> int:
        return self.values.get(where) or self.key(*where)


def check_file(path: Path, disclosure: str | None = None) -> list[Problem]:
    """All problems of one scenario file, errors and warnings, in line order."""
    found: list[Problem] = []

    def add(line: int, level: Level, message: str) -> None:
        found.append(Problem(path, line, level, message))

    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except OSError as err:
        return [Problem(path, 1, "error", str(err))]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        return [Problem(path, mark.line + 1 if mark else 1, "error", f"YAML: {err}")]
    if root is None or not isinstance(data, dict):
        return [Problem(path, 1, "error", "not a YAML mapping (purpose, start, steps...)")]
    lines = _Lines(root)
    _check_top(data, lines, add)
    steps: dict[str, Any] = data["steps"] if isinstance(data.get("steps"), dict) else {}
    _check_steps(path, steps, lines, add)
    _check_handover(data, steps, lines, add)
    _check_graph(data, steps, lines, add)
    _check_texts(data, steps, lines, add)
    _check_disclosure(data, lines, add, disclosure)
    _check_recordings(path, data, steps, lines, add)
    if not any(p.level == "error" for p in found):
        try:
            load_scenario(path, disclosure)
        except ConfigError as err:  # a problem the checks above do not know yet
            add(1, "error", str(err))
    return sorted(found, key=lambda p: (p.line, p.level))


def _errors(err: ValidationError) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(str(x) for x in e["loc"]), e["msg"]) for e in err.errors()]


def _check_top(data: dict[str, Any], lines: _Lines, add: Any) -> None:
    known = set(Scenario.model_fields) - {"folder"}
    for key in data:
        if key not in known:
            add(lines.key(str(key)), "error", f"unknown key {key!r} (known: {sorted(known)})")
    if "purpose" not in data:
        add(1, "error", "no `purpose` (nps, reorder or winback)")
    elif data["purpose"] not in {p.value for p in Purpose}:
        add(
            lines.value("purpose"),
            "error",
            f"purpose {data['purpose']!r} is not one of {[p.value for p in Purpose]}",
        )
    for key in ("start", "steps"):
        if key not in data:
            add(1, "error", f"no `{key}`")
    for key, model in (("speech", Speech), ("handover", Handover)):
        if key not in data:
            continue
        try:
            model.model_validate(data[key])
        except ValidationError as err:
            for loc, msg in _errors(err):
                named = re.search(r"`(\w+)", msg) if not loc else None
                if named and isinstance(data[key], dict) and named.group(1) in data[key]:
                    loc = (named.group(1),)  # a rule over the block: the line of its field
                label = ".".join((key, *loc))
                add(lines.key(key, *loc), "error", f"{label}: {msg.removeprefix('Value error, ')}")


def _check_steps(path: Path, steps: dict[str, Any], lines: _Lines, add: Any) -> None:
    for name, body in steps.items():
        name = str(name)
        if name in RESERVED:
            add(lines.key("steps", name), "error", f"step name {name!r} is reserved")
        if not isinstance(body, dict):
            add(lines.key("steps", name), "error", f"step {name!r} is not a mapping")
            continue
        try:
            Step.model_validate(body)
        except ValidationError as err:
            for loc, msg in _errors(err):
                named = re.search(r"`(\w+)`", msg) if not loc else None
                if named and named.group(1) in body:
                    loc = (named.group(1),)  # a rule over the step: the line of its field
                line = lines.key("steps", name, *loc)
                where = ".".join((name, *loc))
                add(line, "error", f"step {where}: {msg.removeprefix('Value error, ')}")


def _check_handover(data: dict[str, Any], steps: dict[str, Any], lines: _Lines, add: Any) -> None:
    """The handover key may not be an answer of any question (a score, a step's `keys`)."""
    body = data.get("handover")
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        return
    try:
        handover = Handover.model_validate(body)
    except ValidationError:
        return  # reported with the top keys
    for name, step_body in steps.items():
        try:
            step = Step.model_validate(step_body)
        except ValidationError:
            continue  # reported with the steps
        clash = handover.clash(str(name), step)
        if clash:
            add(lines.value("handover", "key"), "error", clash)


def _check_graph(data: dict[str, Any], steps: dict[str, Any], lines: _Lines, add: Any) -> None:
    start = data.get("start")
    if start is not None and start not in steps:
        add(lines.value("start"), "error", f"`start` names no step {start!r}")
    edges: dict[str, list[str]] = {}
    for name, body in steps.items():
        target = body.get("next", END) if isinstance(body, dict) else END
        targets = target if isinstance(target, dict) else {"": target}
        edges[str(name)] = []
        for answer, step in targets.items():
            where = (
                ("steps", str(name), "next", str(answer)) if answer else ("steps", name, "next")
            )
            if not isinstance(step, str):
                add(lines.value(*where), "error", f"step {name!r}: `next` must name a step")
            elif step != END and step not in steps:
                known = ", ".join(sorted(map(str, steps)))
                message = f"step {name!r}: `next` names no step {step!r} ({known}, or end)"
                add(lines.value(*where), "error", message)
            else:
                edges[str(name)].append(step)
    if start not in steps:
        return
    reached, todo = set(), [str(start)]
    while todo:
        name = todo.pop()
        if name == END or name in reached:
            continue
        reached.add(name)
        todo.extend(edges.get(name, []))
    for name in steps:
        if str(name) not in reached:
            add(
                lines.key("steps", str(name)),
                "error",
                f"step {name!r} is never reached from `start` ({start!r})",
            )


def _texts(data: dict[str, Any], steps: dict[str, Any]) -> list[tuple[tuple[str, ...], Any]]:
    found: list[tuple[tuple[str, ...], Any]] = [
        ((key,), data[key])
        for key in (
            "disclosure",
            "optout_say",
            "later_say",
            "voicemail_say",
            "transfer_failed_say",
        )
        if key in data
    ]
    handover = data.get("handover")
    if isinstance(handover, dict):
        found += [(("handover", k), handover[k]) for k in ("say", "callback_say") if k in handover]
    for name, body in steps.items():
        for field in _TEXT_FIELDS:
            if isinstance(body, dict) and field in body:
                found.append((("steps", str(name), field), body[field]))
    return found


def _check_texts(data: dict[str, Any], steps: dict[str, Any], lines: _Lines, add: Any) -> None:
    for where, text in _texts(data, steps):
        line = lines.value(*where)
        label = ".".join(where[1:] if where[0] == "steps" else where)
        if text is None:
            continue
        if not isinstance(text, str):
            add(line, "error", f"{label}: a text is expected, not {type(text).__name__}")
            continue
        try:
            parse_template(text)
        except TemplateSyntaxError as err:
            add(line + max(0, (err.lineno or 1) - 1), "error", f"{label}: template: {err.message}")
            continue
        try:
            render(text, TEMPLATE_VALUES)
        except UndefinedError as err:
            known = ", ".join(sorted(TEMPLATE_VALUES))
            add(line, "error", f"{label}: {err.message} (values: {known})")
        except (TemplateError, ValueError, TypeError) as err:
            add(line, "error", f"{label}: {err}")


def _check_disclosure(
    data: dict[str, Any], lines: _Lines, add: Any, configured: str | None
) -> None:
    own = data.get("disclosure")
    if own is not None and not str(own).strip():
        add(
            lines.value("disclosure"),
            "warning",
            "`disclosure` is empty: the call does not say who is calling, that it is a robot "
            "and that it is recorded (required for automatic calls; delete the key for the "
            "default)",
        )
        return
    text = own if own is not None else configured or DEFAULT_DISCLOSURE
    line = lines.value("disclosure") if own is not None else 1
    try:
        said = render(str(text), TEMPLATE_VALUES)
    except (TemplateError, ValueError, TypeError):
        return  # reported with the texts
    if not _ROBOT.search(said):
        add(
            line,
            "warning",
            "the disclosure does not say that the caller is a robot "
            '("голосовой робот", "автоматический звонок")',
        )
    if not _RECORDED.search(said):
        add(
            line,
            "warning",
            'the disclosure does not say that the call is recorded ("разговор записывается")',
        )
    if "company" not in str(text) and own is not None:
        add(line, "warning", "the disclosure does not name the company ({{ company|gent }})")


def _check_recordings(
    path: Path, data: dict[str, Any], steps: dict[str, Any], lines: _Lines, add: Any
) -> None:
    for name, body in steps.items():
        if not isinstance(body, dict):
            continue
        for field in ("audio", "retry_audio"):
            if isinstance(body.get(field), str) and not (path.parent / body[field]).is_file():
                add(lines.value("steps", str(name), field), "error", f"no file {body[field]}")
    speech = data.get("speech")
    folder = speech.get("recorded") if isinstance(speech, dict) else None
    if not isinstance(folder, str):
        return
    recorded = path.parent / folder
    if not recorded.is_dir():
        add(lines.value("speech", "recorded"), "error", f"speech.recorded: no folder {folder}")
        return
    for where, text in _texts(data, steps):
        prompt = where[0] if where[0] != "steps" else where[1]
        if len(where) == 3 and where[2] == "retry_say":
            prompt = f"{where[1]}.retry"
        if where == ("handover", "callback_say"):
            prompt = "handover_callback"
        if (
            (recorded / f"{prompt}.wav").is_file()
            and isinstance(text, str)
            and _VALUE.search(text)
        ):
            message = f"{prompt}.wav is played to every client, but the text has client values"
            add(lines.value(*where), "warning", message)
