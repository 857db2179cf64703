"""The NPS answers list: filters by group, reason category and period; keyset pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from dashboard.context import deps, render
from dashboard.formatting import CATEGORY_RU, GROUP_RU
from dashboard.paging import nps_cursor_text, parse_nps_cursor
from dashboard.periods import parse_period
from dashboard.shared_pages import shared_page
from povtor.db import utcnow
from povtor.domain import NpsGroup, ReasonCategory
from povtor.ports import NpsCursor, NpsQuery

PERIODS = {"7": "7 дней", "30": "30 дней", "90": "90 дней", "365": "год", "all": "всё время"}
DEFAULT_PERIOD = "90"


def parse_filters(query: Any, tz: ZoneInfo | None = None) -> tuple[NpsQuery, dict[str, str]]:
    """The store query and the filters as they go back into links (unknown values dropped)."""
    group_text = query.get("group", "")
    category_text = query.get("category", "")
    period = query.get("period", DEFAULT_PERIOD)
    group = NpsGroup(group_text) if group_text in NpsGroup.__members__.values() else None
    category = (
        ReasonCategory(category_text)
        if category_text in ReasonCategory.__members__.values()
        else None
    )
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    since = None if period == "all" else utcnow() - timedelta(days=int(period))
    until = None
    filters = {
        "group": group.value if group else "",
        "category": category.value if category else "",
        "period": period,
    }
    if query.get("from") and query.get("to") and tz is not None:  # a drill-down from /why
        chosen = parse_period(query, tz, utcnow(), 30)
        since, until = chosen.start, chosen.end
        filters.update(chosen.query())
    return NpsQuery(group=group, category=category, since=since, until=until), filters


@shared_page()
async def nps_list(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    query, filters = parse_filters(request.query, ZoneInfo(d.settings.default_timezone))
    size = d.settings.dashboard.page_size
    before = parse_nps_cursor(request.query.get("before"))
    rows, names = await d.store.list_nps_answers_named(query, before=before, limit=size + 1)
    answers, more = list(rows[:size]), len(rows) > size
    next_url = None
    if more:
        last = answers[-1]
        cursor = nps_cursor_text(NpsCursor(last.answered_at, last.id))
        next_url = "/nps?" + urlencode({**filters, "before": cursor})
    context = {
        "nav": "nps",
        "answers": answers,
        "names": names,
        "filters": filters,
        "groups": GROUP_RU,
        "categories": CATEGORY_RU,
        "periods": PERIODS,
        "next_url": next_url,
        "first_url": "/nps?" + urlencode(filters) if before else None,
    }
    return render(request, "nps.html", context)
