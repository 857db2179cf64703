"""The step runner: plays a scenario on an answered call and returns what was learnt.

It needs only a small part of :class:`voice.call.Call` (``TalkingCall``). Two pumps run for the
whole conversation: one takes the client's audio frames (to the open listening session, else
into a half-second pre-roll), one takes keypad digits. A question is said while the session
already listens, so a client who answers before the robot finishes ("девять!") or presses a key
cuts the robot short; after the question the runner waits for speech, a key, or silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from nlu import classify_reason
from povtor.ports import SpeechSynth
from voice import answers
from voice.amd import AmdConfig, Detector, Verdict
from voice.answers import Answer
from voice.listen import Heard, ListenConfig, Listener, ListenSession
from voice.scenario import END, AskKind, Scenario, Step, render
from voice.transfer import Transfer

log = logging.getLogger(__name__)

PREROLL_FRAMES = 25  # 0.5 s of audio before a session opens goes into it
GREETING_WAIT_S = 30.0  # an answering machine's greeting longer than this: hang up
KEY_WAIT_S = 1.5  # after "1" on a score question, how long a "0" may take
_SLACK_S = 3.0  # wall-clock margin over a session's audio-time limits


class TalkingCall(Protocol):
    """What the runner uses of an answered call (voice.call.Call fits)."""

    uuid: str

    async def play(self, audio: bytes | Path) -> bool: ...

    def stop_playback(self) -> None: ...

    def frames(self) -> AsyncIterator[bytes]: ...

    def keypresses(self) -> AsyncIterator[str]: ...


@dataclass
class Conversation:
    """What the call taught: answers by name (``score``, ``intent``, ``reason_text``...)."""

    data: dict[str, Any] = field(default_factory=dict)
    prompts: list[dict[str, Any]] = field(default_factory=list)  # robot_text of the call store
    answers: list[dict[str, Any]] = field(default_factory=list)
    # "end", "optout", "later", "transferred", "callback" (asked for a person, who calls back)
    # or "call_ended"
    finished: str = ""

    @property
    def learnt(self) -> bool:
        return any(a["label"] != "none" for a in self.answers)


def prompt_texts(scenario: Scenario, values: Mapping[str, Any]) -> dict[str, str]:
    """Every prompt one client may hear, by the name its recording would have
    (``disclosure``, ``greeting``, ``score.retry``, ``optout_say``, ``later_say``), rendered."""
    found: dict[str, str] = {}
    for where, text in scenario.texts():
        step, _, field = where.partition(".")
        name = step
        if field == "retry_say":
            name = f"{step}.retry"
        elif field == "callback_say":
            name = f"{step}_callback"  # handover_callback
        found[name] = render(text, values)
    return found


async def prepare_prompts(
    scenario: Scenario, synth: SpeechSynth, values: Mapping[str, Any]
) -> None:
    """Synthesise every text one client may hear (before dialling: no wait after the answer);
    prompts played from a recording are not synthesised."""
    texts = {
        text
        for name, text in prompt_texts(scenario, values).items()
        if scenario.recorded(name) is None and not _has_audio(scenario, name)
    }
    await asyncio.gather(*(synth.synth(text) for text in texts))


def _has_audio(scenario: Scenario, name: str) -> bool:
    step, _, retry = name.partition(".")
    found = scenario.steps.get(step)
    if found is None:
        return False
    return (found.retry_audio if retry else found.audio) is not None


class ScenarioRunner:
    def __init__(
        self,
        scenario: Scenario,
        call: TalkingCall,
        synth: SpeechSynth,
        values: Mapping[str, Any],
        *,
        listener: Listener | None = None,
        key_wait_s: float = KEY_WAIT_S,
        amd: AmdConfig | None = None,
        transfer_to: str | None = None,
        transfer_wait_s: float = 30.0,
    ) -> None:
        self.scenario = scenario
        self.call = call
        self.synth = synth
        self.values = values
        self.listener = listener
        self.key_wait_s = key_wait_s
        self.transfer_to = scenario.transfer_to or transfer_to
        self.transfer_wait_s = transfer_wait_s
        self.result = Conversation()
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._keys: asyncio.Queue[str] = asyncio.Queue()
        self._gone = asyncio.Event()  # the call's audio ended: the client hung up
        self._session: ListenSession | None = None
        self._preroll: deque[bytes] = deque(maxlen=PREROLL_FRAMES)
        self._asking = False  # a key pressed now cuts the robot short
        self._session_opened_at = 0.0
        self._pumps: list[asyncio.Task[None]] = []
        # answering-machine detection over the far end's audio from the answer on
        self._detector = Detector(amd) if amd is not None else None
        self._machine = asyncio.Event()  # it is a machine: stop talking to it
        self._greeting_over = asyncio.Event()  # and its greeting (and beep) has ended
        handover = scenario.handover
        self._person_voice = handover is not None and handover.voice
        self._person_key = handover.key if handover is not None else None
        self._handing_over = False  # the client is being handed to a person: no detection

    # --- the conversation ---

    async def run(self) -> Conversation:
        """Walk the scenario; then hang up and :meth:`close` the runner."""
        self._t0 = self._loop.time()
        self._pumps = [
            asyncio.create_task(self._pump_frames(), name=f"frames-{self.call.uuid}"),
            asyncio.create_task(self._pump_keys(), name=f"keys-{self.call.uuid}"),
        ]
        try:
            await self._walk()
        finally:
            self._close_session()
        return self.result

    async def close(self, wait_s: float = 5.0) -> None:
        """After the hang-up: the pumps end with the call's audio (cancelled after ``wait_s``)."""
        self._close_session()
        if not self._pumps:
            return
        _, pending = await asyncio.wait(self._pumps, timeout=wait_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _walk(self) -> None:
        if self.scenario.disclosure:
            await self._say("disclosure", render(self.scenario.disclosure, self.values), None)
            if await self._stopped():
                return
        name = self.scenario.start
        while name != END:
            step = self.scenario.steps[name]
            if step.ask is None:
                await self._say(name, render(step.say, self.values), step.audio)
                if await self._stopped():
                    return
                if step.transfer and await self._transfer(name):
                    self.result.finished = "transferred"
                    return
                if await self._stopped():
                    return
                name = step.next_for("")
                continue
            answer = await self._ask(name, step)
            if self._machine.is_set():
                await self._stopped()
                return
            if answer.label == answers.PERSON:
                await self._hand_over(name, answer)
                return
            if answer.label == answers.OPTOUT:
                await self._say(
                    "optout", render(self.scenario.optout_say, self.values), None, "optout_say"
                )
                self.result.finished = "optout"
                return
            if answer.label == answers.LATER and step.ask is not AskKind.INTENT:
                await self._say(
                    "later", render(self.scenario.later_say, self.values), None, "later_say"
                )
                self.result.finished = "later"
                return
            if self._gone.is_set():
                self.result.finished = "call_ended"
                return
            name = step.next_for(answer.label)
        self.result.finished = "end"

    async def _stopped(self) -> bool:
        """The conversation cannot go on: the client hung up, or an answering machine took the
        call (then ``voicemail_say`` once its greeting is over, if the scenario has one)."""
        if self._machine.is_set():
            self.result.finished = "voicemail"
            message = self.scenario.voicemail_say
            if message and not self._gone.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._greeting_over.wait(), GREETING_WAIT_S)
                if self._greeting_over.is_set():
                    text = render(message, self.values)
                    await self._say("voicemail", text, None, "voicemail_say")
            return True
        if self._gone.is_set():
            self.result.finished = "call_ended"
            return True
        return False

    async def _hand_over(self, name: str, answer: Answer) -> None:
        """The client asked for a person at step ``name``: say so and transfer, or with no
        number to transfer to, say that a manager will call back (a call-back task); either way
        the robot's part of the call is over."""
        handover = self.scenario.handover
        assert handover is not None
        log.info("Call %s: the client asks for a person (%s)", self.call.uuid, answer.via)
        if not self.transfer_to:
            self._transferred(name, Transfer("", "no_target", reason="no number is set"), answer)
            text = render(handover.callback_say, self.values)
            await self._say("handover_callback", text, None)
            self.result.finished = "callback"
            return
        await self._say("handover", render(handover.say, self.values), None)
        if await self._stopped():
            return
        connected = await self._transfer(name, answer)
        self.result.finished = "transferred" if connected else "callback"

    def _transferred(self, name: str, result: Transfer, asked: Answer | None) -> None:
        """The transfer in the conversation's data (the timeline and a call-back task come
        from it); ``asked``: the client's request, when the client asked."""
        by = asked.via if asked is not None else "step"
        self.result.data["transfer"] = {"step": name, "at": self._now(), "by": by,
                                        **result.as_data()}  # fmt: skip
        if not result.connected:
            self.result.data["callback"] = True

    async def _transfer(self, name: str, asked: Answer | None = None) -> bool:
        """Hand the client to a person; True when connected. Otherwise say so and go on (the
        result is in ``data["transfer"]`` and ``data["callback"]`` asks a manager to call)."""
        target = self.transfer_to
        # a call that can transfer (voice.call.Call) has it; a terminal rehearsal has not
        transfer: Callable[[str, float], Awaitable[Transfer]] | None = getattr(
            self.call, "transfer", None
        )
        if not target:
            result = Transfer("", "no_target", reason="no number to transfer to is set")
        elif transfer is None:
            result = Transfer(target, "unsupported", reason="this call cannot transfer")
        else:
            self._handing_over = True
            result = await transfer(target, self.transfer_wait_s)
        self._transferred(name, result, asked)
        log.info("Call %s: transfer %s (%s %s)", self.call.uuid, result.stage, result.code or "",
                 result.reason)  # fmt: skip
        if result.connected:
            return True
        self._handing_over = False
        if not self._gone.is_set():
            text = render(self.scenario.transfer_failed_say, self.values)
            await self._say("transfer_failed", text, None, "transfer_failed_say")
        return False

    async def _ask(self, name: str, step: Step) -> Answer:
        assert step.ask is not None
        heard_words = False
        for attempt in range(1 + step.retries):
            text, audio, prompt = step.say, step.audio, name
            if attempt and (step.retry_say or step.retry_audio):
                text, audio, prompt = step.retry_say or step.say, step.retry_audio, f"{name}.retry"
            answer, heard = await self._ask_once(
                name, step, render(text, self.values), audio, prompt
            )
            heard_words = heard_words or heard
            if answer is not None:
                await self._record(name, step, answer)
                return answer
            if self._gone.is_set() or self._machine.is_set():
                break
        label = "unknown" if step.ask is AskKind.INTENT and heard_words else "none"
        answer = Answer(label, "none")
        await self._record(name, step, answer)
        return answer

    async def _ask_once(
        self, name: str, step: Step, text: str, audio: Path | None, prompt: str
    ) -> tuple[Answer | None, bool]:
        """One asking of the question: (the answer or None, whether words were heard)."""
        kind = step.ask
        assert kind is not None
        session = self._open_session(step)
        saying = asyncio.ensure_future(self._say(name, text, audio, prompt))
        key = asyncio.ensure_future(self._keys.get())
        heard = asyncio.ensure_future(session.next()) if session else None
        gone = asyncio.ensure_future(self._gone.wait())
        machine = asyncio.ensure_future(self._machine.wait())
        # barge-in: the client starts talking over the question, the robot stops and listens
        talking = (
            asyncio.ensure_future(session.speaking.wait()) if session and step.barge_in else None
        )
        self._asking = True
        wait_s = step.wait_s if session is None else step.wait_s + step.max_answer_s + _SLACK_S
        deadline: float | None = None
        heard_words = False
        try:
            while True:
                waiters = {
                    f
                    for f in (saying, key, heard, gone, machine, talking)
                    if f is not None and not f.done()
                }
                timeout = None if deadline is None else max(0.0, deadline - self._loop.time())
                done, _ = await asyncio.wait(
                    waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    return None, heard_words  # silence (keypad only), or a stuck session
                if talking is not None and talking in done and not saying.done():
                    self.call.stop_playback()
                if key in done:
                    self.call.stop_playback()
                    answer = await self._keypad(kind, key.result(), step)
                    if answer is not None:
                        return answer, heard_words
                    key = asyncio.ensure_future(self._keys.get())
                if heard is not None and heard in done:
                    result: Heard = heard.result()
                    if result.speech:
                        heard_words = heard_words or bool(result.text)
                        answer = await self._understand(kind, result)
                        if answer is not None:
                            self.call.stop_playback()
                            return answer, heard_words
                    if result.armed:
                        return None, heard_words  # silence, or words that answer nothing
                    heard = asyncio.ensure_future(session.next())  # type: ignore[union-attr]
                if saying in done and deadline is None:
                    if session is not None:
                        session.arm()
                    deadline = self._loop.time() + wait_s
                if gone in done or machine in done:
                    return None, heard_words
        finally:
            self._asking = False
            waiting = [f for f in (key, heard, gone, machine, talking) if f is not None]
            for future in waiting:
                future.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            if not saying.done():
                self.call.stop_playback()
                await asyncio.gather(saying, return_exceptions=True)
            self._close_session()

    async def _keypad(self, kind: AskKind, digit: str, step: Step) -> Answer | None:
        keys = digit
        if answers.waits_for_more(kind, keys):
            with contextlib.suppress(TimeoutError):
                keys += await asyncio.wait_for(self._keys.get(), self.key_wait_s)
        return answers.from_keys(kind, keys, step.keys, self._person_key)

    async def _understand(self, kind: AskKind, heard: Heard) -> Answer | None:
        answer = await asyncio.to_thread(
            answers.from_words, kind, heard.text, person=self._person_voice
        )
        if answer is None and kind is AskKind.FREE:
            answer = Answer("answered", "voice", heard.text)  # spoken, not recognised here
        if answer is None:
            return None
        at = self._session_opened_at
        return replace(answer, audio=(round(at + heard.start_s, 2), round(at + heard.end_s, 2)))

    async def _record(self, name: str, step: Step, answer: Answer) -> None:
        data = self.result.data
        entry: dict[str, Any] = {
            "step": name,
            "label": answer.label,
            "via": answer.via,
            "text": answer.text,
            "at": self._now(),
        }
        if answer.audio is not None:
            entry["audio"] = list(answer.audio)
        self.result.answers.append(entry)
        if answer.label == answers.OPTOUT:
            data.update(optout=True, optout_text=answer.text, intent=answers.OPTOUT)
            return
        if answer.label in ("none", answers.PERSON):
            return  # a request for a person answers nothing the step asked
        if step.ask is AskKind.SCORE and answer.score is not None:
            data.update(score=answer.score, score_via=answer.via)
        if answer.intent is not None:
            data["intent"] = answer.intent.value
        if step.ask is AskKind.FREE and step.save:
            text = answer.text.strip() or None
            data[f"{step.save}_text"] = text
            data[f"{step.save}_category"] = None
            if text is not None:
                reason = await asyncio.to_thread(classify_reason, text)
                data[f"{step.save}_category"] = reason.category.value
                data[f"{step.save}_evidence"] = list(reason.evidence)
            if answer.audio is not None:
                data[f"{step.save}_audio"] = list(answer.audio)

    # --- saying ---

    async def _say(self, name: str, text: str, audio: Path | None, prompt: str = "") -> bool:
        """Say one prompt: the step's own WAV, else the recording named after the prompt in the
        scenario's ``recorded`` folder, else synthesised speech (ready in the cache by then)."""
        if self._gone.is_set():
            return False
        source: bytes | Path
        if audio is not None:
            source = self.scenario.audio_path(audio)
        else:
            recorded = self.scenario.recorded(prompt or name)
            source = recorded if recorded is not None else await self.synth.synth(text)
        start = self._now()
        played = await self.call.play(source)
        self.result.prompts.append(
            {"step": name, "text": text, "start": start, "end": self._now(), "completed": played}
        )
        return played

    # --- pumps and sessions ---

    def _open_session(self, step: Step) -> ListenSession | None:
        if self.listener is None:
            return None
        config = ListenConfig(wait_s=step.wait_s, max_s=step.max_answer_s)
        session = self.listener.open(config)
        preroll = list(self._preroll)
        self._preroll.clear()
        self._session_opened_at = self._now() - len(preroll) * 0.02
        for frame in preroll:
            session.feed(frame)
        self._session = session
        return session

    def _close_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    async def _pump_frames(self) -> None:
        try:
            async for frame in self.call.frames():
                if self._detector is not None and not self._handing_over:
                    self._detect(frame)
                if self._session is not None:
                    self._session.feed(frame)
                else:
                    self._preroll.append(frame)
        finally:
            self._gone.set()

    async def _pump_keys(self) -> None:
        async for digit in self.call.keypresses():
            if self._asking:
                self.call.stop_playback()
            self._keys.put_nowait(digit)
        self._gone.set()

    def _detect(self, frame: bytes) -> None:
        assert self._detector is not None
        if self._machine.is_set():
            if not self._greeting_over.is_set() and self._detector.greeting_over(frame):
                self._greeting_over.set()
            return
        if self._detector.result is not None:
            return
        found = self._detector.feed(frame)
        if found is None:
            return
        self.result.data["amd"] = {
            "verdict": found.verdict.value,
            "at": found.at_s,
            "reason": found.reason,
        }
        if found.verdict is Verdict.MACHINE:
            log.info("Call %s: answering machine (%s)", self.call.uuid, found.reason)
            self._machine.set()
            self.call.stop_playback()

    def _now(self) -> float:
        return round(self._loop.time() - self._t0, 3)
