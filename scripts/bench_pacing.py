"""Pacing over a simulated day: 10,000 contacts all due at midnight (a first run on a fresh
base), clients in six Russian time zones, calls and messages for the three purposes. Each
simulated minute the dispatcher's own policies decide (the client's quiet hours from
``outreach.hours``, the caps over all clients from ``outreach.pacing``); the hourly histogram
in the business's time zone shows the contacts spread under the caps instead of a burst.

    .venv/bin/python scripts/bench_pacing.py [--contacts 10000] \
        [--pacing "call/*=60/h,400/d; telegram/*=600/h,3000/d; call/winback=20/h,100/d"]

Not a timing benchmark: it prints what would go out when, and checks every hour and the day
against every cap (exit 1 if one is exceeded). The decision cost per contact is printed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict, deque
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from outreach.hours import next_allowed
from outreach.pacing import hour_and_day_start, matching, pace_until, parse_pacing
from outreach.rules import ContactRules
from povtor.domain import ChannelKind, Purpose

BUSINESS_TZ = "Europe/Moscow"
ZONES = (
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Asia/Yekaterinburg",
    "Asia/Novosibirsk",
    "Asia/Vladivostok",
    "Asia/Kamchatka",
)
PURPOSES = (Purpose.REORDER, Purpose.NPS, Purpose.WINBACK)
DEFAULT_PACING = "call/*=60/h,400/d; telegram/*=600/h,3000/d; call/winback=20/h,100/d"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--pacing", default=DEFAULT_PACING)
    args = parser.parse_args()
    rules = ContactRules(pacing=parse_pacing(args.pacing), pacing_timezone=BUSINESS_TZ)
    tz = ZoneInfo(BUSINESS_TZ)
    day = datetime(2026, 3, 3, tzinfo=tz).astimezone(UTC)  # a Tuesday, midnight in Moscow

    # due contacts, queued per (channel, purpose, zone) in due order (all due at midnight)
    queues: dict[tuple[ChannelKind, Purpose, str], deque[int]] = defaultdict(deque)
    for i in range(args.contacts):
        channel = ChannelKind.CALL if i % 10 < 7 else ChannelKind.TELEGRAM
        queues[(channel, PURPOSES[i % 3], ZONES[i % len(ZONES)])].append(i)

    started: list[tuple[datetime, ChannelKind, Purpose]] = []
    counts: dict[tuple[ChannelKind, Purpose], tuple[int, int]] = {}
    hour_of_counts = day
    decisions = 0
    t0 = time.perf_counter()
    for minute in range(24 * 60):
        now = day + timedelta(minutes=minute)
        hour_start, _day_start = hour_and_day_start(now, BUSINESS_TZ)
        if hour_start != hour_of_counts:  # a new hour: this hour's counts start again
            counts = {k: (0, d) for k, (_h, d) in counts.items()}
            hour_of_counts = hour_start
        for (channel, purpose, zone), queue in queues.items():
            while queue:
                decisions += 1
                if next_allowed(now, zone, channel, rules) > now:  # the client's quiet hours
                    break
                held = pace_until(now, channel, purpose, counts, rules.pacing, tz_name=BUSINESS_TZ)
                if held is not None:
                    break
                queue.popleft()
                hour, today = counts.get((channel, purpose), (0, 0))
                counts[(channel, purpose)] = (hour + 1, today + 1)
                started.append((now, channel, purpose))
    elapsed = time.perf_counter() - t0

    per_hour: dict[int, Counter[tuple[ChannelKind, Purpose]]] = defaultdict(Counter)
    for at, channel, purpose in started:
        per_hour[at.astimezone(tz).hour][(channel, purpose)] += 1
    print(f"pacing: {args.pacing}  (business time zone {BUSINESS_TZ})")
    print(
        f"{args.contacts} contacts due at 00:00; decision cost {1e6 * elapsed / decisions:.1f} us"
    )
    header = "hour  " + "  ".join(f"{r.label():>14}" for r in rules.pacing) + "   all"
    print(header)
    over = []
    for hour in range(24):
        row = per_hour.get(hour, Counter())
        cells = []
        for rule in rules.pacing:
            n = matching({k: (v, v) for k, v in row.items()}, rule)[0]
            cap = rule.per_hour if rule.per_hour is not None else "-"
            cells.append(f"{n:>6} / {cap!s:<5}")
            if rule.per_hour is not None and n > rule.per_hour:
                over.append(f"{hour:02d}:00 {rule.label()} {n} > {rule.per_hour}")
        print(f"{hour:02d}:00 " + "  ".join(cells) + f"  {sum(row.values()):>5}")
    total: Counter[tuple[ChannelKind, Purpose]] = Counter((c, p) for _a, c, p in started)
    print("day   " + "  ".join(
        f"{matching({k: (v, v) for k, v in total.items()}, r)[0]:>6} / {r.per_day!s:<5}"
        for r in rules.pacing
    ) + f"  {len(started):>5}")  # fmt: skip
    for rule in rules.pacing:
        n = matching({k: (v, v) for k, v in total.items()}, rule)[0]
        if rule.per_day is not None and n > rule.per_day:
            over.append(f"day {rule.label()} {n} > {rule.per_day}")
    busiest = max((at for at, _c, _p in started), default=None)
    if started:
        first_minute = Counter(at for at, _c, _p in started).most_common(1)[0]
        print(
            f"most contacts started in one minute: {first_minute[1]}",
            f"(at {first_minute[0]:%H:%M} UTC)",
        )
    print(f"left for the next days: {args.contacts - len(started)}; last start {busiest}")
    if over:
        print("OVER THE CAPS: " + "; ".join(over))
        return 1
    print("every hour and the day under every cap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
