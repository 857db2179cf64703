"""The client list's filters: parsed from the query string, back into links, to the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.periods import parse_period
from dashboard.roles import Role, sees_full_phones
from povtor.domain import ChannelKind, ConsentChannel, NpsGroup
from povtor.ports import AbcCell, ClientFilter

SEGMENTS = {"none": "без заказов", "new": "новые", "repeat": "постоянные", "lost": "ушедшие"}
NPS_GROUPS = {"promoter": "сторонники", "passive": "нейтральные", "detractor": "критики"}
AGES: dict[str, tuple[str, int | None, int | None]] = {
    "30": ("до 30 дней", None, 30),
    "90": ("31–90 дней", 31, 90),
    "180": ("91–180 дней", 91, 180),
    "365": ("181–365 дней", 181, 365),
    "old": ("больше года", 366, None),
}
CHANNELS = {"telegram": "Telegram", "call": "телефон"}
CONSENTS = {"telegram": "Telegram", "call": "звонки", "sms": "SMS", "email": "почта"}
OPT_OUTS = {"no": "контакты разрешены", "yes": "отказ от контактов"}
CELLS = {f"{a}{x}" for a in "ABC" for x in ("", "X", "Y", "Z")}
NAMES = ("q", "segment", "nps", "age", "channel", "consent", "optout", "cell", "from", "to")


def parse_client_filters(
    query: Any, role: Role, tz: ZoneInfo, now: datetime
) -> tuple[ClientFilter, dict[str, str]]:
    """The store filter and the values that go back into links (unknown values dropped).

    Those who see masked phone numbers search by the last 4 digits or the whole number only."""
    text = query.get("q", "").strip()[:100]
    kept: dict[str, str] = {"q": text} if text else {}
    where = ClientFilter(text=text, phone_suffix_only=not sees_full_phones(role), as_of=now)

    def pick(name: str, allowed: Any) -> str | None:
        value = query.get(name, "")
        if value in allowed:
            kept[name] = value
            return str(value)
        return None

    if segment := pick("segment", SEGMENTS):
        where = replace(where, segment=segment)
    if group := pick("nps", NPS_GROUPS):
        where = replace(where, nps_group=NpsGroup(group))
    if age := pick("age", AGES):
        _, low, high = AGES[age]
        where = replace(where, last_order_min_days=low, last_order_max_days=high)
    if channel := pick("channel", CHANNELS):
        where = replace(where, channel=ChannelKind(channel))
    if consent := pick("consent", CONSENTS):
        where = replace(where, consent=ConsentChannel(consent))
    if opt_out := pick("optout", OPT_OUTS):
        where = replace(where, opted_out=opt_out == "yes")
    if cell := pick("cell", CELLS - {""}):
        chosen = parse_period(query, tz, now, 365)
        kept.update(chosen.query())
        where = replace(where, cell=AbcCell(chosen.start, chosen.end, cell[0], cell[1:] or None))
    return where, kept
