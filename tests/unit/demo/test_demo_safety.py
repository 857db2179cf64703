"""The demo's safety rules: what counts as reaching outside, which clients are demo ones, and
that a real worker's channels refuse demo clients and say why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.demo.marks import DemoClientGuard, demo_mark
from app.demo.safety import demo_environment, outside_loopback
from povtor.domain import Attempt, AttemptState, ChannelKind, Client, OutcomeKind, Purpose
from povtor.settings import Settings, SipSettings, TelegramSettings
from tests.fakes.outreach_channels import ScriptedChannel

TOKEN = "5012345678:AAF0realLookingTokenFromBotFather0000"


def _settings(**parts: object) -> Settings:
    base = {
        "telegram": TelegramSettings(_env_file=None),  # type: ignore[call-arg]
        "sip": SipSettings(_env_file=None),  # type: ignore[call-arg]
    }
    return Settings(_env_file=None, **{**base, **parts})  # type: ignore[call-arg]


def _tg(**values: object) -> TelegramSettings:
    return TelegramSettings(_env_file=None, **values)  # type: ignore[call-arg]


def _sip(**values: object) -> SipSettings:
    defaults = {"enabled": True, "proxy": "127.0.0.1:5070", "local_host": "127.0.0.1"}
    return SipSettings(_env_file=None, **{**defaults, **values})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"telegram": _tg(bot_token=TOKEN, api_base="http://127.0.0.1:8081")}, []),
        ({"telegram": _tg(bot_token=TOKEN)}, ["Telegram: POVTOR_TELEGRAM_API_BASE"]),
        (
            {"telegram": _tg(bot_token=TOKEN, api_base="https://api.telegram.org")},
            ["Telegram: POVTOR_TELEGRAM_API_BASE"],
        ),
        ({"sip": _sip()}, []),
        ({"sip": _sip(proxy="sip.provider.example:5060")}, ["SIP: POVTOR_SIP_PROXY"]),
        ({"sip": _sip(proxy="[::1]:5060")}, []),
        ({"sip": _sip(registrar="10.0.0.5")}, ["SIP: POVTOR_SIP_REGISTRAR"]),
        ({"sip": _sip(proxy=None)}, ["SIP: no POVTOR_SIP_PROXY"]),
        ({"sip": _sip(public_host="203.0.113.7")}, ["SIP: the robot listens"]),
        ({"sip": _sip(local_host="0.0.0.0")}, ["SIP: the robot listens"]),
    ],
)
def test_demo_mode_names_every_channel_pointing_beyond_loopback(
    parts: dict[str, object], expected: list[str]
) -> None:
    found = outside_loopback(_settings(**parts))
    assert len(found) == len(expected), found
    for line, start in zip(found, expected, strict=True):
        assert line.startswith(start), found


def test_demo_environment_drops_every_povtor_variable_of_the_caller() -> None:
    base = {"PATH": "/usr/bin", "POVTOR_SIP_PROXY": "sip.provider.example", "povtor_x": "1"}
    env = demo_environment(base, {"POVTOR_DATA_DIR": "data/demo"})
    assert env == {"PATH": "/usr/bin", "POVTOR_DATA_DIR": "data/demo", "POVTOR_DEMO_MODE": "true"}


def _client(**values: object) -> Client:
    defaults: dict[str, object] = {"id": 7, "external_id": "C-1", "name": "Анна"}
    return Client(**{**defaults, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("client", "demo"),
    [
        (_client(phones=("+79161234567",), telegram_chat_id=123456789), False),
        (_client(external_id="DEMO-000001"), True),
        (_client(phones=("+79161234567", "+79790123456")), True),
        (_client(telegram_chat_id=9_000_000_017), True),
    ],
)
def test_demo_clients_are_recognised_by_any_of_their_marks(client: Client, demo: bool) -> None:
    assert (demo_mark(client) is not None) is demo


def _attempt() -> Attempt:
    return Attempt(
        id=1,
        client_id=7,
        purpose=Purpose.NPS,
        channel=ChannelKind.CALL,
        state=AttemptState.CLAIMED,
        not_before=datetime.now(UTC),
        idempotency_key="nps:7:2026-12-01",
    )


async def test_a_real_worker_refuses_demo_clients_and_says_why() -> None:
    inner = ScriptedChannel(ChannelKind.CALL)
    guard = DemoClientGuard(inner)
    refused = await guard.execute(_attempt(), _client(phones=("+79790991111",)))
    assert refused.kind is OutcomeKind.UNREACHABLE
    assert "demo client" in refused.detail
    assert "+7 979 0" in refused.detail
    assert inner.executed == []
    passed = await guard.execute(_attempt(), _client(phones=("+79161234567",)))
    assert passed.kind is OutcomeKind.ANSWERED
    assert len(inner.executed) == 1
    assert guard.kind is ChannelKind.CALL
