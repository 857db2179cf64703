"""The client list's query string: what reaches the store, what goes back into links."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dashboard.client_list import parse_client_filters
from dashboard.roles import Role
from povtor.domain import ChannelKind, ConsentChannel, NpsGroup

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def test_known_filters_reach_the_store_and_the_links() -> None:
    query = {
        "q": " Иван ",
        "segment": "repeat",
        "nps": "detractor",
        "age": "90",
        "channel": "telegram",
        "consent": "sms",
        "optout": "no",
    }
    where, kept = parse_client_filters(query, Role.MANAGER, MOSCOW, NOW)
    assert where.text == "Иван"
    assert where.segment == "repeat"
    assert where.nps_group is NpsGroup.DETRACTOR
    assert (where.last_order_min_days, where.last_order_max_days) == (31, 90)
    assert where.channel is ChannelKind.TELEGRAM
    assert where.consent is ConsentChannel.SMS
    assert where.opted_out is False
    assert where.phone_suffix_only is False
    assert where.as_of == NOW
    assert kept == {**query, "q": "Иван"}


def test_unknown_values_are_dropped_not_echoed() -> None:
    query = {"segment": "<script>", "nps": "all", "age": "-1", "cell": "DX", "optout": "maybe"}
    where, kept = parse_client_filters(query, Role.MANAGER, MOSCOW, NOW)
    assert kept == {}
    assert where.segment is None
    assert where.nps_group is None
    assert where.cell is None
    assert where.opted_out is None


def test_viewers_search_phones_by_suffix_only() -> None:
    for role, suffix_only in ((Role.VIEWER, True), (Role.MANAGER, False), (Role.ADMIN, False)):
        where, _ = parse_client_filters({"q": "4567"}, role, MOSCOW, NOW)
        assert where.phone_suffix_only is suffix_only


def test_a_cell_is_the_period_in_the_business_zone() -> None:
    query = {"cell": "BY", "from": "2025-01-01", "to": "2025-12-31"}
    where, kept = parse_client_filters(query, Role.VIEWER, MOSCOW, NOW)
    assert where.cell is not None
    assert (where.cell.abc, where.cell.xyz) == ("B", "Y")
    assert where.cell.start == datetime(2024, 12, 31, 21, tzinfo=UTC)
    assert where.cell.end == datetime(2025, 12, 31, 21, tzinfo=UTC)
    assert kept == query
    where, _ = parse_client_filters({"cell": "A"}, Role.VIEWER, MOSCOW, NOW)
    assert where.cell is not None
    assert where.cell.xyz is None  # a period under three months has no XYZ
