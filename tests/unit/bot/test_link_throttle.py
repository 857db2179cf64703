"""The Telegram link under 429s: degraded once per storm, not flapping with every poll."""

from __future__ import annotations

import logging

import pytest

from bot.link import TelegramLink
from povtor.domain import ChannelKind
from povtor.health import HealthBoard, HealthState


def test_a_storm_of_429s_is_degraded_once_and_ends_with_a_message_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="povtor.health")
    board = HealthBoard()
    link = TelegramLink("api.telegram.org", board)
    link.succeeded()
    for _ in range(5):  # every message refused, while polls keep going through
        link.throttled(1.0)
        link.succeeded()
    entry = board.components["telegram"]
    assert entry.state is HealthState.DEGRADED
    assert "429 Too Many Requests" in entry.reason
    assert link.usable  # messages are still tried, after the wait
    assert board.unavailable(ChannelKind.TELEGRAM) is None  # nothing held back as if down
    link.succeeded(sent=True)
    assert board.components["telegram"].state is HealthState.OK
    said = [r.getMessage() for r in caplog.records if r.name == "povtor.health"]
    assert [m.split(":")[0] for m in said] == ["telegram degraded", "telegram recovered"]
