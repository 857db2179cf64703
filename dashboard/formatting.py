"""How values look on the dashboard's pages (Russian labels, local time, masked phones)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import phonenumbers

from dashboard.roles import Role, sees_full_phones
from povtor.domain import (
    ChannelKind,
    EventKind,
    NpsGroup,
    OutcomeKind,
    ReasonCategory,
    TaskStatus,
    nps_group,
)
from povtor.logs import mask_phone

GROUP_RU = {
    NpsGroup.PROMOTER: "сторонники",
    NpsGroup.PASSIVE: "нейтральные",
    NpsGroup.DETRACTOR: "критики",
}
CATEGORY_RU = {
    ReasonCategory.SERVICE_QUALITY: "качество обслуживания",
    ReasonCategory.NO_PERSONAL_APPROACH: "нет личного подхода",
    ReasonCategory.MANAGER_COMPETENCE: "компетентность менеджера",
    ReasonCategory.NO_CONVENIENT_CHANNEL: "неудобный канал связи",
    ReasonCategory.SLOW_PROCESSING: "медленная обработка",
    ReasonCategory.PRODUCT_QUALITY: "качество товара",
    ReasonCategory.PRICE: "цена",
    ReasonCategory.DELIVERY: "доставка",
    ReasonCategory.OTHER: "другое",
}
CHANNEL_RU = {ChannelKind.TELEGRAM: "Telegram", ChannelKind.CALL: "звонок"}
STATUS_RU = {
    TaskStatus.OPEN: "открыта",
    TaskStatus.IN_PROGRESS: "в работе",
    TaskStatus.DONE: "выполнена",
    TaskStatus.CANCELLED: "отменена",
}
EVENT_RU = {
    EventKind.ORDER: "заказ",
    EventKind.MESSAGE_IN: "сообщение клиента",
    EventKind.MESSAGE_OUT: "сообщение клиенту",
    EventKind.CALL: "звонок",
    EventKind.NPS_ANSWER: "оценка NPS",
    EventKind.COMPLAINT: "жалоба",
    EventKind.TASK: "задача",
    EventKind.OPT_OUT: "отказ от контактов",
    EventKind.OPT_IN: "согласие на контакты",
    EventKind.CONSENT: "согласие",
    EventKind.NOTE: "заметка",
}
OUTCOME_RU = {
    OutcomeKind.ANSWERED: "разговор",
    OutcomeKind.DELIVERED: "доставлено",
    OutcomeKind.BUSY: "занято",
    OutcomeKind.NO_ANSWER: "не ответил",
    OutcomeKind.VOICEMAIL: "автоответчик",
    OutcomeKind.REJECTED: "отклонён",
    OutcomeKind.HUNG_UP_EARLY: "сразу положил трубку",
    OutcomeKind.UNREACHABLE: "недоступен",
    OutcomeKind.FAILED: "сбой",
    OutcomeKind.INTERRUPTED: "прерван",
}
SPEAKER_RU = {"robot": "Робот", "client": "Клиент", "mono": "Запись"}
SEGMENT_RU = {
    "none": "без заказов",
    "new": "новый",
    "repeat": "постоянный",
    "lost": "ушедший",
}
# Seven or more digits with the separators people write numbers with, glued to letters or not:
# "+7 (916) 123-45-67", "89161234567", "тел.9161234567". Dates (2026-01-31) are left alone.
_DIGIT_RUN = re.compile(r"\+?\d(?:[\s().\-]{0,2}\d){6,}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Formatter:
    """Filters for the templates, bound to the business's time zone."""

    def __init__(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)

    def filters(self) -> dict[str, Any]:
        return {
            "dt": self.dt,
            "day": self.day,
            "money": money,
            "nps_value": nps_value,
            "plural": plural,
            "percent": percent,
            "clock": clock,
            "score_class": score_class,
            "group_ru": lambda g: GROUP_RU.get(g, "—") if g else "—",
            "category_ru": lambda c: CATEGORY_RU.get(c, "—") if c else "—",
            "channel_ru": lambda c: CHANNEL_RU.get(c, str(c)),
            "status_ru": lambda s: STATUS_RU.get(s, str(s)),
            "event_ru": lambda k: EVENT_RU.get(k, str(k)),
            "outcome_ru": lambda o: OUTCOME_RU.get(o, str(o)),
            "speaker_ru": lambda s: SPEAKER_RU.get(s, s),
            "segment_ru": lambda s: SEGMENT_RU.get(s, s),
            "pii": pii,
            "isodate": lambda d: d.strftime("%d.%m.%Y"),
            "ratio": ratio,
            "money_text": money_text,
        }

    def dt(self, value: datetime | None) -> str:
        return "—" if value is None else value.astimezone(self.tz).strftime("%d.%m.%Y %H:%M")

    def day(self, value: datetime | None) -> str:
        return "—" if value is None else value.astimezone(self.tz).strftime("%d.%m.%Y")


_RU_MOBILE = re.compile(r"\+79[0-9]{9}")


def show_phone(phone: str, role: Role) -> str:
    """Managers see the whole number (to call back); viewers see it masked."""
    if not sees_full_phones(role):
        return mask_phone(phone)
    if _RU_MOBILE.fullmatch(phone):
        # what phonenumbers writes for a Russian mobile, without its ~30 us parse: most of a
        # list page's numbers (tested equal to phonenumbers)
        return f"+7 {phone[2:5]} {phone[5:8]}-{phone[8:10]}-{phone[10:]}"
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask_phones_in_text(text: str) -> str:
    """Every run of 7+ digits (a phone number however written) keeps only its last 2 digits."""
    return _DIGIT_RUN.sub(_mask_run, text)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if _ISO_DATE.fullmatch(run.strip()):
        return run
    digits = [i for i, ch in enumerate(run) if ch.isdigit()]
    hidden = set(digits[:-2])
    return "".join("•" if i in hidden else ch for i, ch in enumerate(run))


@jinja2.pass_context
def pii(context: Any, text: str | None) -> str:
    """Free text (a reason, a message, a transcript line) as the current user may read it."""
    if not text:
        return ""
    return text if context.get("sees_phones") else mask_phones_in_text(text)


def money(value: Decimal, currency: str = "RUB") -> str:
    text = f"{value:,.2f}".replace(",", "\u00a0").replace(".", ",")
    return f"{text}\u00a0₽" if currency == "RUB" else f"{text}\u00a0{currency}"


def nps_value(value: float | None) -> str:
    return "—" if value is None else f"{value:+.0f}".replace("+0", "0")


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}".replace(".", ",")


def money_text(value: str | None) -> str:
    """An amount as ``povtor report --json`` writes it ("1234.50") in roubles."""
    return "—" if value is None else money(Decimal(value))


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}\u00a0%"


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def score_class(score: int | None) -> str:
    return "none" if score is None else nps_group(score).value


def plural(n: int, one: str, few: str, many: str) -> str:
    """Russian plural: 1 оценка, 2 оценки, 5 оценок, 21 оценка, 11 оценок."""
    if n % 10 == 1 and n % 100 != 11:
        word = one
    elif 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        word = few
    else:
        word = many
    return f"{n}\u00a0{word}"
