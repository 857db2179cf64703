"""The demo's simulated people in Telegram: clients who link their chats, press the reminder
buttons, score NPS surveys and say why, complain, ask to be reminded later, opt out; and a
manager who joins with an invite and takes the alerts about unhappy clients.

They only see what the bot sent to the Bot API emulator and answer through it, exactly as
people in Telegram would. The "you" client is left to the newcomer (the sandbox page).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from app.demo.world import YOU_KEY, CastMember, Persona
from app.sandbox.telegram_api import BotApiEmulator, Sent
from app.sandbox.telegram_user import SimulatedUser, button_texts

THINK_S = (0.8, 2.5)
RESEND_AFTER_S = 20.0
RESEND_TIMES = 3  # a person reads before pressing: makes the live display readable
SCORES = [str(n) for n in range(11)]
ASKS_WHY = ("улучшить", "высокую оценку", "предпринять", "изменили", "что случилось")
GENERIC_REASONS = [
    "Всё устраивает, спасибо",
    "Доставка задерживается",
    "Хотелось бы дешевле",
    "Удобно заказывать через бота",
]


@dataclass
class Feed:
    """What the simulated people did, newest last (for the live display)."""

    lines: deque[str] = field(default_factory=lambda: deque(maxlen=8))

    def add(self, line: str) -> None:
        self.lines.append(line)


@dataclass
class Script:
    """How one simulated client answers."""

    name: str
    score: int | None = None
    reason: str | None = None
    press: str | None = None
    opening: str | None = None
    silent: bool = False
    start_payload: str | None = None  # /start payload sent first (deep link, invite)
    presses: tuple[str, ...] = ()  # further buttons pressed whenever shown (manager)


log = logging.getLogger(__name__)


def persona_script(persona: Persona, start_payload: str | None) -> Script:
    return Script(
        name=persona.name,
        score=persona.score,
        reason=persona.reason,
        press=persona.press,
        opening=persona.opening,
        silent=persona.silent,
        start_payload=start_payload,
    )


def generic_script(chat_id: int, name: str) -> Script:
    """A generated client: answers like most people, a few never answer."""
    rng = random.Random(chat_id)
    if rng.random() < 0.2:
        return Script(name, silent=True)
    score = rng.choice([10, 10, 9, 9, 8, 7, 6, 4, 2])
    return Script(
        name,
        score=score,
        reason=rng.choice(GENERIC_REASONS),
        press=rng.choice(["Повторить заказ", "Напомнить позже", "Хочу заказать снова"]),
    )


def manager_script(invite_code: str) -> Script:
    return Script("Менеджер", start_payload=invite_code, presses=("Взять себе",))


class Person:
    def __init__(self, user: SimulatedUser, script: Script, feed: Feed) -> None:
        self.user, self.script, self.feed = user, script, feed
        self._answered_why = False

    async def _think(self) -> None:
        await asyncio.sleep(random.uniform(*THINK_S))

    async def run(self, stop: asyncio.Event) -> None:
        s = self.script
        if s.start_payload:
            self.feed.add(f"{s.name}: открыл(а) ссылку на бота")
            await self._until_answered(f"/start {s.start_payload}", stop)
        if s.opening:
            await self._think()
            self.feed.add(f"{s.name}: «{s.opening}»")
            await self._until_answered(s.opening, stop)
        while not stop.is_set():
            try:
                message = await self.user.next_message(within=1.0)
            except TimeoutError:
                continue
            if not s.silent:
                await self._think()
                await self._react(message)

    async def _until_answered(self, text: str, stop: asyncio.Event) -> None:
        """Write, and write again when the bot stays silent, as a person would (an update the
        bot fetched but had not handled when its worker was killed is gone)."""
        for _ in range(RESEND_TIMES):
            await self.user.send_text(text)
            deadline = asyncio.get_running_loop().time() + RESEND_AFTER_S
            while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
                try:
                    message = await self.user.next_message(within=1.0)
                except TimeoutError:
                    continue
                await self._think()
                await self._react(message)
                return
            if stop.is_set():
                return

    async def _press(self, message: Sent, button: str) -> None:
        """Press, and press again while the button keeps spinning (no answer from the bot),
        as people do."""
        for _ in range(RESEND_TIMES):
            query = await self.user.press(message, button)
            try:
                await self.user.answer_to(query, within=RESEND_AFTER_S)
            except TimeoutError:
                continue
            return

    async def _react(self, message: Sent) -> None:
        s, buttons = self.script, button_texts(message)
        if s.score is not None and set(SCORES) <= set(buttons):
            await self._press(message, str(s.score))
            self.feed.add(f"{s.name}: оценка {s.score}")
            return
        for wanted in (s.press, *s.presses):
            if wanted and wanted in buttons:
                await self._press(message, wanted)
                self.feed.add(f"{s.name}: нажал(а) «{wanted}»")
                return
        asks = not buttons and any(word in message.text for word in ASKS_WHY)
        if asks and s.reason and not self._answered_why:
            self._answered_why = True
            await self.user.send_text(s.reason)
            self.feed.add(f"{s.name}: «{s.reason}»")


class SimulatedPeople:
    """Every simulated chat, each in its own task, until ``stop``."""

    def __init__(self, api: BotApiEmulator, feed: Feed) -> None:
        self.api, self.feed = api, feed
        self.people: list[Person] = []

    def add(self, chat_id: int, script: Script) -> None:
        user = SimulatedUser(self.api, chat_id, script.name.split()[0])
        self.people.append(Person(user, script, self.feed))

    def add_cast(self, cast: list[CastMember], link_payload: Callable[[int], str]) -> None:
        for member in cast:
            if member.chat_id is None:
                continue
            if member.persona.key == YOU_KEY:  # the newcomer plays this one
                self.api.add_chat(member.chat_id, "Вы")
                continue
            payload = None
            if member.persona.telegram == "deep_link":
                payload = link_payload(member.client_id)
            self.add(member.chat_id, persona_script(member.persona, payload))

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            for person in self.people:
                tg.create_task(self._guarded(person, stop))

    async def _guarded(self, person: Person, stop: asyncio.Event) -> None:
        """One simulated person's mistake (a button gone from a message they meant to press)
        ends that person's part, not the demo."""
        try:
            await person.run(stop)
        except OSError:  # the emulator closing under a press at the end
            pass
        except Exception as err:
            log.warning("a simulated client stopped: %s", err)
