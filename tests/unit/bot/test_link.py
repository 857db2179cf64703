"""The Telegram link: what a failure says, once per change, with capped backoff."""

from __future__ import annotations

import logging

import pytest
from aiogram.exceptions import (
    TelegramConflictError,
    TelegramNetworkError,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetMe, GetUpdates

from bot.link import TelegramLink, diagnose
from bot.webhook import webhook_path
from povtor.domain import ChannelKind
from povtor.errors import ConfigError
from povtor.health import HealthBoard, HealthState

TOKEN = "123456:SECRETtokenSECRETtoken"


@pytest.mark.parametrize(
    ("err", "state", "says"),
    [
        (TelegramUnauthorizedError(GetMe(), "Unauthorized"), "token_refused", "401"),
        (TelegramConflictError(GetUpdates(), "Conflict: terminated"), "conflict", "409"),
        (TelegramServerError(GetMe(), "Bad Gateway"), "unreachable", "failed"),
        (TelegramNetworkError(GetMe(), "Request timeout error"), "unreachable", "timeout"),
    ],
)
def test_a_failure_says_what_is_wrong_with_the_link(err: Exception, state: str, says: str) -> None:
    found = diagnose(err, "api.telegram.org")
    assert found.state == state
    assert says in found.reason
    assert "api.telegram.org" in found.reason


def test_a_link_logs_once_per_change_and_reports_to_health(
    caplog: pytest.LogCaptureFixture,
) -> None:
    board = HealthBoard()
    link = TelegramLink("api.telegram.org", board, token=TOKEN)
    assert board.components == {}  # starting: its first try tells
    caplog.set_level(logging.INFO)
    down = TelegramNetworkError(GetMe(), f"Cannot connect to bot{TOKEN}")
    for _ in range(5):
        link.failed(down)
    link.failed(TelegramNetworkError(GetMe(), "Request timeout error"))  # same state
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "telegram down: cannot reach the Bot API at api.telegram.org" in caplog.text
    assert TOKEN not in caplog.text
    reason = board.unavailable(ChannelKind.TELEGRAM)
    assert reason is not None
    assert "cannot reach the Bot API at api.telegram.org" in reason
    assert TOKEN not in reason
    link.succeeded()
    link.succeeded()
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert "telegram recovered" in caplog.records[-1].getMessage()
    assert board.unavailable(ChannelKind.TELEGRAM) is None
    assert board.problems() == []


def test_backoff_doubles_up_to_its_cap() -> None:
    link = TelegramLink("h", backoff_s=1.0, backoff_max_s=10.0)
    delays = []
    for _ in range(6):
        link.failed(TelegramNetworkError(GetMe(), "down"))
        delays.append(link.next_delay())
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    link.succeeded()
    link.failed(TelegramNetworkError(GetMe(), "down"))
    assert link.next_delay() == 1.0


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://bot.example.ru/telegram", "/telegram"),
        ("https://bot.example.ru/telegram/webhook", "/telegram/webhook"),
        ("https://bot.example.ru", "/"),
    ],
)
def test_the_webhook_is_served_on_the_path_telegram_is_told(url: str, path: str) -> None:
    assert webhook_path(url) == path


def test_a_webhook_url_without_a_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="POVTOR_TELEGRAM_WEBHOOK_URL"):
        webhook_path("/telegram/webhook")


def test_a_polling_conflict_is_degraded_but_messages_still_go_out() -> None:
    board = HealthBoard()
    link = TelegramLink("api.telegram.org", board)
    link.failed(TelegramConflictError(GetUpdates(), "Conflict: terminated by other getUpdates"))
    component = board.components["telegram"]
    assert component.state is HealthState.DEGRADED
    assert component.reason.startswith("Telegram (api.telegram.org) answered 409 Conflict")
    assert board.unavailable(ChannelKind.TELEGRAM) is None
    link.failed(TelegramUnauthorizedError(GetMe(), "Unauthorized"))
    assert "401" in (board.unavailable(ChannelKind.TELEGRAM) or "")
