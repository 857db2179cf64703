"""Start-up decisions that need nothing running: health states, database URLs, trunk ports,
retries of our own failures, library log levels."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outreach.retries import after_outcome
from outreach.rules import contact_rules
from povtor.db import async_url, unsupported_driver
from povtor.domain import AttemptState, ChannelKind, OutcomeKind
from povtor.errors import ConfigError
from povtor.health import HealthBoard, HealthState
from povtor.logs import setup_logging
from povtor.settings import OutreachSettings, SipSettings, TelegramSettings
from voice.sip.trunks import load_trunks


def test_a_state_change_is_logged_once_and_recovery_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    board = HealthBoard()
    with caplog.at_level(logging.INFO, logger="povtor.health"):
        for _ in range(3):
            board.report("trunk office", HealthState.DOWN, "no response from 10.0.0.1:5060")
        board.ok("trunk office")
        board.ok("trunk office")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "trunk office down: no response from 10.0.0.1:5060"),
        ("INFO", "trunk office recovered"),
    ]
    assert board.state is HealthState.OK


def test_the_worst_component_decides_the_board_state() -> None:
    board = HealthBoard()
    board.ok("dashboard")
    board.report("trunk a registration", HealthState.DEGRADED, "retrying")
    assert board.state is HealthState.DEGRADED
    board.report("trunk b", HealthState.DOWN, "cannot resolve x")
    assert board.state is HealthState.DOWN
    assert [p.name for p in board.problems()] == ["trunk a registration", "trunk b"]
    assert board.as_json()["trunk b"] == {"state": "down", "reason": "cannot resolve x"}


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:p@db:5432/povtor", "postgresql+asyncpg://u:p@db:5432/povtor"),
        ("postgres://u@db/povtor", "postgresql+asyncpg://u@db/povtor"),
        ("postgresql+asyncpg://u@db/povtor", "postgresql+asyncpg://u@db/povtor"),
        ("sqlite:///data/povtor.db", "sqlite+aiosqlite:///data/povtor.db"),
        ("postgresql+psycopg2://u@db/povtor", "postgresql+psycopg2://u@db/povtor"),
    ],
)
def test_database_urls_as_hosting_panels_write_them_run_on_async_drivers(
    given: str, used: str
) -> None:
    assert async_url(given) == used


def test_a_sync_driver_is_refused_naming_the_form_to_write() -> None:
    problem = unsupported_driver("postgresql+psycopg2://u@db/povtor")
    assert problem is not None
    assert "POVTOR_DATABASE_URL" in problem
    assert "postgresql://user" in problem
    assert unsupported_driver("postgresql+asyncpg://u@db/povtor") is None


def test_trunks_from_the_file_listen_on_free_ports_beside_the_default(tmp_path: Path) -> None:
    path = tmp_path / "trunks.yaml"
    path.write_text("- name: office\n  proxy: 10.0.0.1\n- name: city\n  proxy: 10.0.0.2\n")
    trunks = load_trunks(SipSettings(_env_file=None, trunks_file=path))  # type: ignore[call-arg]
    ports = {n: t.local_port for n, t in trunks.items()}
    assert ports == {"default": 5060, "office": 0, "city": 0}


def test_two_trunks_on_one_port_are_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "trunks.yaml"
    path.write_text("- name: office\n  proxy: 10.0.0.1\n  local_port: 5060\n")
    with pytest.raises(ConfigError, match="'default' and 'office' both listen on port 5060"):
        load_trunks(SipSettings(_env_file=None, trunks_file=path))  # type: ignore[call-arg]


def test_our_failure_is_retried_even_when_the_clients_tries_are_used_up() -> None:
    rules = contact_rules(OutreachSettings(_env_file=None), TelegramSettings(_env_file=None))  # type: ignore[call-arg]
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    ours = after_outcome(OutcomeKind.FAILED, ChannelKind.CALL, 9, now, rules, ours=True)
    theirs = after_outcome(OutcomeKind.FAILED, ChannelKind.CALL, 9, now, rules)
    assert ours.state is AttemptState.RETRY_SCHEDULED
    assert ours.retry_at is not None
    assert ours.retry_at > now
    assert theirs.state is AttemptState.GIVEN_UP


def test_library_loggers_stay_at_info_when_ours_log_debug() -> None:
    try:
        setup_logging("DEBUG")
        assert logging.getLogger("botocore").getEffectiveLevel() == logging.INFO
        assert logging.getLogger("asyncio").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("voice").getEffectiveLevel() == logging.DEBUG
        setup_logging("DEBUG", library_level="DEBUG")
        assert logging.getLogger("botocore").getEffectiveLevel() == logging.DEBUG
    finally:
        setup_logging("INFO")


def test_the_env_example_names_every_s3_and_registration_setting() -> None:
    example = (Path(__file__).parents[3] / ".env.example").read_text(encoding="utf-8")
    for name in (
        "POVTOR_RECORDINGS_S3_ACCESS_KEY",
        "POVTOR_RECORDINGS_S3_SECRET_KEY",
        "POVTOR_SIP_REGISTER_HOLD_CALLS",
        "POVTOR_SIP_PUBLIC_HOST",
        "POVTOR_SIP_RTP_PORT_MIN",
        "POVTOR_LOG_LIBRARY_LEVEL",
    ):
        assert name in example
