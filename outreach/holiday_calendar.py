"""Public holidays of the business's country (the ``holidays`` package), as a date check."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays

from outreach.hours import HolidayCheck, no_holidays
from povtor.errors import ConfigError


@lru_cache(maxsize=8)
def holiday_check(country: str | None) -> HolidayCheck:
    """``day in holidays`` for ``country`` (ISO code, e.g. "RU"); None means no holidays."""
    if not country:
        return no_holidays
    try:
        calendar = holidays.country_holidays(country.upper())
    except NotImplementedError as err:
        raise ConfigError(f"no public holiday calendar for country {country!r}") from err

    def is_holiday(day: date) -> bool:
        return day in calendar

    return is_holiday
