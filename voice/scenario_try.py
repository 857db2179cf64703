"""``povtor scenario try``: a conversation with a scenario in the terminal, answers typed.

The walk follows the step runner's rules (``voice.scenario_runner``): the disclosure first, a
question asked again ``retries`` times, a refusal ending any scenario with ``optout_say``,
"позвоните позже" ending a non-yes/no question with ``later_say``, ``unknown`` for a yes/no
question heard but not understood, and with ``handover`` a request for a person (words or its
key) ending the walk as a transfer that could not be made here. Typed digits (and ``*``, ``#``)
are keypad presses, an empty line is silence, ``/hangup`` is the client hanging up, anything
else is what the client says, understood by the same functions as live speech. No audio is
made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voice import answers
from voice.answers import Answer
from voice.scenario import END, AskKind, Handover, Scenario, Step, render

HANGUP = "/hangup"
Say = Callable[[str, str], None]  # (prompt name, text)
Hear = Callable[[str], str | None]  # (prompt name) -> typed answer; None: input ended


@dataclass
class Walk:
    said: list[str] = field(default_factory=list)  # prompt names in order
    data: dict[str, Any] = field(default_factory=dict)
    finished: str = ""


class _HungUp(Exception):
    pass


def understand(
    kind: AskKind, typed: str, step: Step, handover: Handover | None = None
) -> Answer | None:
    """A typed answer: keypad when it is only keys, else words."""
    typed = typed.strip()
    if not typed:
        return None
    if all(c in "0123456789*#" for c in typed):
        return answers.from_keys(kind, typed, step.keys, handover.key if handover else None)
    return answers.from_words(kind, typed, person=handover is not None and handover.voice)


def walk(scenario: Scenario, values: Mapping[str, Any], say: Say, hear: Hear) -> Walk:
    result = Walk()

    def speak(name: str, template: str) -> None:
        result.said.append(name)
        say(name, render(template, values))

    try:
        if scenario.disclosure:
            speak("disclosure", scenario.disclosure)
        name = scenario.start
        while name != END:
            step = scenario.steps[name]
            if step.ask is None:
                speak(name, step.say)
                if step.transfer:  # a terminal cannot transfer: as on a line that refuses it
                    speak("transfer_failed_say", scenario.transfer_failed_say)
                    result.data["callback"] = True
                name = step.next_for("")
                continue
            answer = _ask(name, step, speak, hear, scenario.handover)
            _record(result.data, step, answer)
            if answer.label == answers.PERSON and scenario.handover is not None:
                # a terminal cannot transfer: as a transfer that failed (or had no number)
                speak("handover", scenario.handover.say)
                speak("transfer_failed_say", scenario.transfer_failed_say)
                result.data["callback"] = True
                result.finished = "callback"
                return result
            if answer.label == answers.OPTOUT:
                speak("optout_say", scenario.optout_say)
                result.finished = "optout"
                return result
            if answer.label == answers.LATER and step.ask is not AskKind.INTENT:
                speak("later_say", scenario.later_say)
                result.finished = "later"
                return result
            name = step.next_for(answer.label)
        result.finished = "end"
    except _HungUp:
        result.finished = "call_ended"
    return result


def _ask(
    name: str,
    step: Step,
    speak: Callable[[str, str], None],
    hear: Hear,
    handover: Handover | None,
) -> Answer:
    assert step.ask is not None
    heard_words = False
    for attempt in range(1 + step.retries):
        prompt, text = name, step.say
        if attempt and step.retry_say:
            prompt, text = f"{name}.retry", step.retry_say
        speak(prompt, text)
        typed = hear(prompt)
        if typed is None or typed.strip() == HANGUP:
            raise _HungUp
        answer = understand(step.ask, typed, step, handover)
        if answer is not None:
            return answer
        heard_words = heard_words or bool(typed.strip())
    label = "unknown" if step.ask is AskKind.INTENT and heard_words else "none"
    return Answer(label, "none")


def _record(data: dict[str, Any], step: Step, answer: Answer) -> None:
    if answer.label == answers.OPTOUT:
        data["optout"] = True
        return
    if answer.score is not None:
        data["score"] = answer.score
    if answer.intent is not None:
        data["intent"] = answer.intent.value
    if step.ask is AskKind.FREE and step.save and answer.label == "answered":
        data[f"{step.save}_text"] = answer.text
