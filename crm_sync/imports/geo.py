"""Russian cities and time-zone spellings, for imports ("Город", "МСК+4") and the demo."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# City -> IANA zone. The demo draws clients from this table; imports use it when a file has a
# city column but no time zone.
CITY_TIMEZONES: dict[str, str] = {
    "Москва": "Europe/Moscow",
    "Санкт-Петербург": "Europe/Moscow",
    "Казань": "Europe/Moscow",
    "Нижний Новгород": "Europe/Moscow",
    "Ростов-на-Дону": "Europe/Moscow",
    "Краснодар": "Europe/Moscow",
    "Воронеж": "Europe/Moscow",
    "Волгоград": "Europe/Volgograd",
    "Калининград": "Europe/Kaliningrad",
    "Самара": "Europe/Samara",
    "Ижевск": "Europe/Samara",
    "Саратов": "Europe/Saratov",
    "Уфа": "Asia/Yekaterinburg",
    "Пермь": "Asia/Yekaterinburg",
    "Екатеринбург": "Asia/Yekaterinburg",
    "Челябинск": "Asia/Yekaterinburg",
    "Тюмень": "Asia/Yekaterinburg",
    "Омск": "Asia/Omsk",
    "Новосибирск": "Asia/Novosibirsk",
    "Барнаул": "Asia/Barnaul",
    "Томск": "Asia/Tomsk",
    "Красноярск": "Asia/Krasnoyarsk",
    "Кемерово": "Asia/Novokuznetsk",
    "Иркутск": "Asia/Irkutsk",
    "Улан-Удэ": "Asia/Irkutsk",
    "Чита": "Asia/Chita",
    "Якутск": "Asia/Yakutsk",
    "Хабаровск": "Asia/Vladivostok",
    "Владивосток": "Asia/Vladivostok",
    "Южно-Сахалинск": "Asia/Sakhalin",
    "Магадан": "Asia/Magadan",
    "Петропавловск-Камчатский": "Asia/Kamchatka",
}

# Offset from Moscow time (MSK = UTC+3) -> a representative zone.
_MSK_OFFSETS: dict[int, str] = {
    -1: "Europe/Kaliningrad",
    0: "Europe/Moscow",
    1: "Europe/Samara",
    2: "Asia/Yekaterinburg",
    3: "Asia/Omsk",
    4: "Asia/Krasnoyarsk",
    5: "Asia/Irkutsk",
    6: "Asia/Yakutsk",
    7: "Asia/Vladivostok",
    8: "Asia/Magadan",
    9: "Asia/Kamchatka",
}

_OFFSET = re.compile(r"^(?P<base>msk|мск|utc|gmt)?\s*(?P<sign>[+-])?\s*(?P<hours>\d{1,2})?$")
_CITIES_FOLDED = {name.casefold().replace("ё", "е"): tz for name, tz in CITY_TIMEZONES.items()}


def timezone_for_city(city: str) -> str | None:
    """The zone of a known Russian city ("г. Екатеринбург" works too), else None."""
    folded = city.strip().casefold().replace("ё", "е")
    folded = re.sub(r"^(г\.?|город)\s*", "", folded)
    return _CITIES_FOLDED.get(folded)


def parse_timezone(value: str) -> str | None:
    """An IANA name, "МСК+4", "MSK-1", "UTC+5", "+3", "GMT+7" -> an IANA name, else None."""
    text = value.strip()
    if not text:
        return None
    if "/" in text or text.upper() == "UTC":
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        return text
    match = _OFFSET.match(text.casefold().replace(" ", ""))
    if match is None or (match["base"] is None and match["sign"] is None):
        return None
    hours = int(match["hours"] or 0) * (-1 if match["sign"] == "-" else 1)
    if match["base"] in ("msk", "мск"):
        return _MSK_OFFSETS.get(hours)
    return _MSK_OFFSETS.get(hours - 3)
