"""Why clients are unhappy: detractors' and passives' reasons as a Pareto chart for a period,
with the change against the previous period of the same length; each bar opens the answers."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from dashboard.charts import Bar, pareto_chart
from dashboard.context import deps, render
from dashboard.formatting import CATEGORY_RU
from dashboard.overview import local_time
from dashboard.periods import parse_period
from dashboard.shared_pages import shared_page
from povtor.db import utcnow
from povtor.domain import NpsGroup, ReasonCategory
from povtor.ports import ReasonCount

DEFAULT_DAYS = 30
GROUPS = {"detractor": "критики", "passive": "нейтральные", "both": "критики и нейтральные"}
NO_REASON = "none"


def tally(rows: list[ReasonCount] | Any, groups: set[NpsGroup]) -> Counter[str]:
    """Answers per reason category (``none``: not given or not classified) in these groups."""
    counts: Counter[str] = Counter()
    for r in rows:
        if r.group in groups:
            counts[r.category.value if r.category else NO_REASON] += r.answers
    return counts


def pareto_bars(
    now: Counter[str], before: Counter[str], link: dict[str, str], group: str
) -> list[Bar]:
    """Bars largest first (ties in the order of the categories), each linked to its answers."""
    order = [c.value for c in ReasonCategory] + [NO_REASON]
    keys = sorted(
        (k for k in order if now[k] or before[k]), key=lambda k: (-now[k], order.index(k))
    )
    bars = []
    for key in keys:
        query = {**link} if group == "both" else {**link, "group": group}
        if key != NO_REASON:
            query["category"] = key
        label = CATEGORY_RU[ReasonCategory(key)] if key != NO_REASON else "причина не названа"
        bars.append(Bar(key, label, now[key], "/nps?" + urlencode(query), before[key]))
    return bars


@shared_page()
async def reasons_page(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    tz = ZoneInfo(d.settings.default_timezone)
    chosen = parse_period(request.query, tz, utcnow(), DEFAULT_DAYS)
    previous = chosen.previous(tz)
    group = request.query.get("group", "detractor")
    group = group if group in GROUPS else "detractor"
    groups = {NpsGroup.DETRACTOR, NpsGroup.PASSIVE} if group == "both" else {NpsGroup(group)}
    context: dict[str, Any] = {
        "nav": "why",
        "period": chosen,
        "previous": previous,
        "group": group,
        "groups": GROUPS,
        "connected": d.retention is not None,
    }
    if d.retention is not None:
        retention = d.retention
        now_rows, before_rows = await asyncio.gather(
            d.recent.get(
                ("reasons", chosen.start, chosen.end),
                lambda: retention.reasons(chosen.start, chosen.end),
            ),
            d.recent.get(
                ("reasons", previous.start, previous.end),
                lambda: retention.reasons(previous.start, previous.end),
            ),
        )
        through = await d.recent.get(("figures-through",), retention.figures_through)
        now, before = tally(now_rows, groups), tally(before_rows, groups)
        bars = pareto_bars(now, before, {**chosen.query(), "period": "all"}, group)
        context.update(
            bars=bars,
            chart=pareto_chart(bars),
            total=sum(now.values()),
            total_before=sum(before.values()),
            stored_through=local_time(d, through),
        )
    return render(request, "why.html", context)
