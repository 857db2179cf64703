"""A deterministic synthetic business: clients, orders with reorder cycles, NPS history.

Same ``seed`` and ``until`` date, same data. Phones are +7 979 0XX-XX-XX: valid Russian mobile
numbers for ``phonenumbers`` in a DEF block that its carrier data assigns to no operator. Russia
has no officially reserved fictional range (unlike the UK's Ofcom drama numbers), so this is the
closest safe choice: never dial demo numbers through a real trunk.
Telegram chat ids are 9_000_000_000 + n, above the ids Telegram hands to private chats today.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from crm_sync.imports.geo import CITY_TIMEZONES
from povtor.domain import ChannelKind, ReasonCategory, nps_group

DEMO_PREFIX = "DEMO-"
DEMO_PHONE_BLOCK = "+79790"  # +7 979 0XX XX XX
_PHONE_STEP = 7919  # coprime with 10**6: a bijection of the block, numbers look scattered
CHAT_ID_BASE = 9_000_000_000
_CENT = Decimal("0.01")

MALE = ["Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Иван", "Михаил",
        "Николай", "Павел", "Олег", "Юрий", "Виктор", "Егор", "Роман", "Владимир"]  # fmt: skip
FEMALE = ["Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана",
          "Екатерина", "Юлия", "Дарья", "Алина", "Ксения", "Марина", "Вера", "Полина"]  # fmt: skip
PATRONYMIC_ROOTS = ["Александров", "Дмитриев", "Сергеев", "Андреев", "Алексеев", "Иванов",
                    "Михайлов", "Николаев", "Павлов", "Олегов", "Юрьев", "Викторов"]  # fmt: skip
SURNAMES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
            "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев",
            "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов",
            "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов",
            "Яковлев", "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов",
            "Александров", "Дмитриев", "Королёв", "Гусев", "Киселев", "Ильин", "Максимов",
            "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев", "Антонов",
            "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев",
            "Герасимов", "Богданов", "Осипов", "Сидоров", "Матвеев", "Титов", "Марков",
            "Миронов", "Крылов", "Куликов", "Карпов", "Власов", "Мельников", "Денисов",
            "Гаврилов", "Тихонов", "Казаков", "Афанасьев", "Данилов", "Савельев"]  # fmt: skip
MANAGERS = ["Смирнова А.", "Орлов Д.", "Ковалёва Е.", "Гусев П.", "Тихонова М."]

# category -> (typical reorder cycle in days, items with base prices in roubles)
CATEGORIES: dict[str, tuple[int, list[tuple[str, int]]]] = {
    "Вода и напитки": (14, [("Вода питьевая 19 л", 390), ("Вода 5 л, 4 шт.", 520)]),
    "Кофе и чай": (30, [("Кофе в зёрнах 1 кг", 1890), ("Чай листовой 500 г", 740)]),
    "Корм для животных": (30, [("Корм для кошек 10 кг", 4200), ("Корм для собак 15 кг", 5600)]),
    "Бытовая химия": (45, [("Средство для стирки 5 л", 1150), ("Набор для уборки", 980)]),
    "Канцтовары": (60, [("Бумага А4, 5 пачек", 1650), ("Картриджи для принтера", 3900)]),
    "Косметика": (40, [("Крем для лица", 1450), ("Шампунь 1 л", 690)]),
}
CATEGORY_NAMES = list(CATEGORIES)
CITIES = list(CITY_TIMEZONES)

NPS_REASONS: dict[str, list[tuple[str, ReasonCategory]]] = {
    "promoter": [
        ("Всегда привозят вовремя", ReasonCategory.DELIVERY),
        ("Менеджер помнит, что мне нужно", ReasonCategory.NO_PERSONAL_APPROACH),
        ("Хорошее качество и цены", ReasonCategory.PRICE),
    ],
    "passive": [
        ("В целом нормально, но бывают задержки", ReasonCategory.DELIVERY),
        ("Хотелось бы скидки постоянным клиентам", ReasonCategory.PRICE),
        ("Неудобно заказывать по телефону", ReasonCategory.NO_CONVENIENT_CHANNEL),
    ],
    "detractor": [
        ("Курьер опоздал на три часа", ReasonCategory.DELIVERY),
        ("Привезли не тот товар", ReasonCategory.SERVICE_QUALITY),
        ("Менеджер не перезвонил", ReasonCategory.MANAGER_COMPETENCE),
        ("Слишком дорого", ReasonCategory.PRICE),
        ("Долго обрабатывают заказ", ReasonCategory.SLOW_PROCESSING),
        ("Качество товара стало хуже", ReasonCategory.PRODUCT_QUALITY),
    ],
}


@dataclass(frozen=True, slots=True)
class DemoSpec:
    clients: int
    seed: int = 1
    until: date = date(2026, 1, 1)
    history_years: int = 12


@dataclass(frozen=True, slots=True)
class DemoOrder:
    number: int  # order sequence number within the whole business, 1-based
    placed_at: datetime
    delivered_at: datetime | None
    amount: Decimal
    category: str
    item: str
    quantity: int


@dataclass(frozen=True, slots=True)
class DemoNps:
    score: int | None
    answered_at: datetime
    channel: ChannelKind
    reason: str | None
    category: ReasonCategory | None


@dataclass(frozen=True, slots=True)
class DemoClient:
    index: int  # 0-based
    external_id: str
    name: str
    phone: str
    email: str | None
    city: str
    timezone: str
    manager: str
    telegram_chat_id: int | None
    call_consent: bool
    churned: bool
    orders: list[DemoOrder] = field(default_factory=list)
    nps: list[DemoNps] = field(default_factory=list)
    unanswered_surveys: list[datetime] = field(default_factory=list)


def demo_phone(index: int) -> str:
    return f"{DEMO_PHONE_BLOCK}{(index * _PHONE_STEP + 104_729) % 1_000_000:06d}"


def _name(rng: random.Random) -> str:
    female = rng.random() < 0.5
    surname = rng.choice(SURNAMES)
    root = rng.choice(PATRONYMIC_ROOTS)
    if female:
        return f"{surname}а {rng.choice(FEMALE)} {root}на"
    return f"{surname} {rng.choice(MALE)} {root}ич"


def generate(spec: DemoSpec) -> Iterator[DemoClient]:
    """Clients one by one (memory stays flat); order numbers run across the whole business."""
    if spec.clients > 1_000_000:
        raise ValueError("the demo phone block holds 1,000,000 clients")
    rng = random.Random(spec.seed)
    end = datetime.combine(spec.until, time(18, 0), UTC)
    span_days = spec.history_years * 365
    order_no = 0
    for i in range(spec.clients):
        city = rng.choice(CITIES)
        category = rng.choice(CATEGORY_NAMES)
        cycle_base, items = CATEGORIES[category]
        cycle = max(7.0, cycle_base * rng.lognormvariate(0.9, 0.5))
        # Most clients are recent: tenure ~ exponential, capped by the history span.
        tenure_days = min(span_days, int(rng.expovariate(1 / 900)) + 1)
        first = end - timedelta(days=tenure_days, hours=rng.randint(0, 10))
        churned = rng.random() < 0.35
        stop = end
        if churned:
            stop = first + timedelta(days=rng.uniform(0, tenure_days))
        item, price = rng.choice(items)
        chat = CHAT_ID_BASE + i if rng.random() < 0.3 else None
        client = DemoClient(
            index=i,
            external_id=f"{DEMO_PREFIX}{i + 1:07d}",
            name=_name(rng),
            phone=demo_phone(i),
            email=f"client{i + 1}@example.com" if rng.random() < 0.4 else None,
            city=city,
            timezone=CITY_TIMEZONES[city],
            manager=rng.choice(MANAGERS),
            telegram_chat_id=chat,
            call_consent=rng.random() < 0.85,
            churned=churned,
        )
        at = first
        while at <= stop:
            order_no += 1
            quantity = rng.choice((1, 1, 1, 2, 3))
            amount = Decimal(round(price * quantity * rng.uniform(0.85, 1.3), -1)).quantize(_CENT)
            delivered = at + timedelta(days=rng.randint(1, 3))
            client.orders.append(
                DemoOrder(
                    number=order_no,
                    placed_at=at.replace(microsecond=0),
                    delivered_at=delivered.replace(microsecond=0) if delivered < end else None,
                    amount=amount,
                    category=category,
                    item=item,
                    quantity=quantity,
                )
            )
            at += timedelta(days=cycle * rng.uniform(0.7, 1.4), minutes=rng.randint(-300, 300))
        _nps_history(rng, client, end)
        yield client


def _nps_history(rng: random.Random, client: DemoClient, end: datetime) -> None:
    for order in client.orders[-3:]:
        if order.delivered_at is None or rng.random() > 0.25:
            continue
        asked = order.delivered_at + timedelta(days=3)
        if asked >= end:
            continue
        if rng.random() < 0.35:
            client.unanswered_surveys.append(asked)
            continue
        roll = rng.random() - (0.15 if client.churned else 0)
        score = rng.randint(9, 10) if roll > 0.45 else rng.randint(7, 8) if roll > 0.2 else None
        if score is None:
            score = rng.randint(0, 6)
        group = nps_group(score).value
        reason, category = rng.choice(NPS_REASONS[group])
        channel = ChannelKind.TELEGRAM if client.telegram_chat_id else ChannelKind.CALL
        client.nps.append(
            DemoNps(
                score=score,
                answered_at=asked + timedelta(minutes=rng.randint(1, 600)),
                channel=channel,
                reason=reason if rng.random() < 0.8 else None,
                category=category,
            )
        )
