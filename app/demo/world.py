"""The demo's business: the generator's synthetic clients plus a cast of named clients whose
history makes each occasion due now (reorder, NPS, win-back) and whose simulated selves answer
in a known way, so every path of the product shows within two minutes.

Every demo client is marked as such (``DEMO-`` ids, phones in +7 979 0, chat ids from
9,000,000,000; see :mod:`app.demo.marks`), and a real run refuses to contact them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from povtor.domain import ChannelKind, ConsentChannel, OrderItem

PERSONA_CHAT_BASE = 9_100_000_000
MANAGER_CHAT = 9_199_000_001
YOU_KEY = "you"

# Zones tried when placing clients in daytime or night-time (real ones first, then fixed
# offsets, so some zone always fits).
_ZONES = [
    "Europe/Moscow", "Europe/Kaliningrad", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
    "Asia/Magadan", "Asia/Kamchatka", "Europe/London", "America/New_York",
    "America/Los_Angeles", "Pacific/Honolulu", "Asia/Tokyo", "Pacific/Auckland",
    *(f"Etc/GMT{'-' if h > 0 else '+'}{abs(h)}" for h in range(-12, 15) if h),
]  # fmt: skip


def zone_at_hours(now: datetime, first: int, last: int) -> str:
    """A time zone whose local hour is now between ``first`` and ``last`` (inclusive)."""
    for name in _ZONES:
        if first <= now.astimezone(ZoneInfo(name)).hour <= last:
            return name
    raise RuntimeError(f"no time zone has a local hour in {first}..{last} now")


@dataclass(frozen=True, slots=True)
class Persona:
    """A named demo client: what is due for them and how their simulated self answers."""

    key: str
    name: str
    occasion: str  # "reorder", "nps", "nps_live" (delivered during the run), "winback", ""
    telegram: str  # "linked" (chat known), "deep_link" (links during the run), "" (phone only)
    phone_mode: int  # 0 answers, 1 busy, 2 rings until given up, 3 hangs up halfway
    key_digit: int  # pressed on the phone after the greeting
    score: int | None = None  # pressed under an NPS survey in Telegram
    reason: str | None = None  # typed when asked why
    press: str | None = None  # a button pressed under a reminder
    opening: str | None = None  # written first, unprompted
    silent: bool = False  # never answers in Telegram
    night: bool = False  # lives where it is night now

    def phone(self, index: int) -> str:
        """+7 979 099 B D NN: the demo phones read behaviour and key from the number."""
        return f"+7979099{self.phone_mode}{self.key_digit}{index:02d}"

    @property
    def external_id(self) -> str:
        return f"DEMO-{self.key.upper()}"


CAST: tuple[Persona, ...] = (
    Persona("anna", "Анна Соколова", "nps_live", "linked", 0, 9, score=9,
            reason="Курьер привёз быстро, всё вежливо"),
    Persona("igor", "Игорь Петров", "nps", "linked", 0, 2, score=3,
            reason="Курьер опоздал на три часа и не позвонил"),
    Persona("maria", "Мария Кузнецова", "reorder", "linked", 0, 1, press="Повторить заказ"),
    Persona("oleg", "Олег Морозов", "reorder", "linked", 0, 1, press="Напомнить позже",
            reason="Перезвоните мне через неделю, пожалуйста"),
    Persona("svetlana", "Светлана Волкова", "", "linked", 0, 1, opening="/complaint",
            reason="Мне привезли разбитую бутылку воды, верните деньги"),
    Persona("pavel", "Павел Лебедев", "winback", "linked", 0, 2, opening="/stop"),
    Persona("dmitry", "Дмитрий Егоров", "nps", "linked", 0, 8, silent=True),
    Persona("vera", "Вера Орлова", "winback", "linked", 0, 1, press="Хочу заказать снова",
            reason="Нужна скидка постоянного клиента"),
    Persona("ksenia", "Ксения Зайцева", "", "deep_link", 0, 1),
    Persona("elena", "Елена Никитина", "nps", "", 0, 2),
    Persona("roman", "Роман Белов", "nps", "", 0, 9),
    Persona("nikolai", "Николай Фролов", "reorder", "", 1, 1),
    Persona("yulia", "Юлия Карпова", "nps", "", 2, 8),
    Persona("egor", "Егор Титов", "nps", "", 3, 5),
    Persona("polina", "Полина Жукова", "nps", "linked", 0, 7, score=10, night=True,
            reason="Всё отлично"),
    Persona(YOU_KEY, "Вы (песочница)", "nps", "linked", 2, 5),  # the phone rings unanswered
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CastMember:
    persona: Persona
    client_id: int
    chat_id: int | None  # the chat the simulated client writes from
    phone: str


def _orders(persona: Persona, now: datetime) -> list[tuple[datetime, datetime | None, int]]:
    """(placed, delivered, roubles) making the persona's occasion due now."""

    def days_ago(days: int, roubles: int) -> tuple[datetime, datetime | None, int]:
        return now - timedelta(days=days), now - timedelta(days=days - 1), roubles

    if persona.occasion == "reorder":  # every 14 days; the next one is a day away
        return [days_ago(d, 390) for d in (55, 41, 27, 13)]
    if persona.occasion == "winback":  # monthly, then silent for 110 days
        return [days_ago(d, 1890) for d in (200, 170, 140, 110)]
    if persona.occasion == "nps":  # delivered today
        return [
            (now - timedelta(days=40), now - timedelta(days=39), 2490),
            (now - timedelta(days=1), now - timedelta(hours=5), 2490),
        ]
    return []  # new clients: "nps_live" gets its first order delivered during the run


async def add_cast(store: SqlHistoryStore, now: datetime) -> list[CastMember]:
    """Create the named clients with their orders and consents."""
    day = zone_at_hours(now, 11, 16)
    night = zone_at_hours(now, 1, 5)
    cast = []
    for index, persona in enumerate(CAST):
        phone = persona.phone(index)
        if await store.find_client_by_phone(phone) is not None:
            raise RuntimeError(f"demo phone {phone} is taken: generate fewer clients")
        client = await store.create_client(
            ClientInput(
                external_id=persona.external_id,
                name=persona.name,
                phones=(phone,),
                timezone=night if persona.night else day,
                preferred_channel=ChannelKind.TELEGRAM if persona.telegram else ChannelKind.CALL,
                manager="Смирнова А.",
                consents=(
                    (ConsentChannel.CALL, True, "demo"),
                    (ConsentChannel.TELEGRAM, True, "demo"),
                ),
                ad_consents=(  # the named clients agreed to offers too (38-FZ)
                    (ConsentChannel.CALL, True, "demo"),
                    (ConsentChannel.TELEGRAM, True, "demo"),
                ),
            )
        )
        for n, (placed, delivered, roubles) in enumerate(_orders(persona, now), 1):
            await store.add_order(order_for(persona, n, placed, delivered, roubles))
        chat = PERSONA_CHAT_BASE + index if persona.telegram else None
        if persona.telegram == "linked":
            await store.link_telegram(client.id, chat)
        cast.append(CastMember(persona, client.id, chat, phone))
    return cast


def order_for(
    persona: Persona, n: int, placed: datetime, delivered: datetime | None, roubles: int
) -> OrderInput:
    return OrderInput(
        external_id=f"{persona.external_id}-{n}",
        client_external_id=persona.external_id,
        placed_at=placed,
        delivered_at=delivered,
        amount=Decimal(roubles),
        items=(
            OrderItem(
                name="Вода питьевая 19 л", price=Decimal(roubles), category="Вода и напитки"
            ),
        ),
    )


async def deliver_live_orders(store: SqlHistoryStore, cast: Sequence[CastMember]) -> int:
    """The shop delivers an order now (as an import would bring it): NPS follows."""
    now = datetime.now(UTC)
    count = 0
    for member in cast:
        if member.persona.occasion == "nps_live":
            placed = now - timedelta(days=2)
            await store.add_order(order_for(member.persona, 9, placed, now, 2490))
            count += 1
    return count
