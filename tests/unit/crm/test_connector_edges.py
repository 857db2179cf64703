"""Small pure parts of the connectors: phone spellings, names, the rate limiter, settings."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from crm_sync.connectors.errors import CrmRefused, CrmTransient
from crm_sync.connectors.http import RateLimiter
from crm_sync.connectors.names import person_name
from crm_sync.connectors.phones import phone_digits, same_number, spellings
from crm_sync.outbound.build import build_connector, crm_kind
from crm_sync.outbound.selection import DEFAULT_KINDS, parse_kinds
from povtor.domain import Client
from povtor.errors import ConfigError
from povtor.logs import mask_phone
from povtor.settings import CrmSettings, Settings


def test_phone_spellings_and_comparison() -> None:
    assert spellings("+79161234567") == ["+79161234567", "79161234567", "89161234567"]
    assert spellings("+375291234567") == ["+375291234567", "375291234567"]
    assert phone_digits("8 (916) 123-45-67") == "79161234567"
    assert same_number("+7 (916) 123-45-67", "+79161234567")
    assert not same_number("+7 (926) 123-45-67", "+79161234567")
    assert not same_number("", "+79161234567")


@pytest.mark.parametrize(
    ("name", "first", "last", "middle"),
    [
        ("Петрова Анна Сергеевна", "Анна", "Петрова", "Сергеевна"),
        ("Анна", "Анна", "", ""),
        ("ООО Ромашка", "ООО Ромашка", "", ""),
        ("", "Клиент C-9", "", ""),
    ],
)
def test_names_are_split_the_russian_way_only_when_they_have_three_words(
    name: str, first: str, last: str, middle: str
) -> None:
    parts = person_name(Client(id=1, external_id="C-9", name=name))
    assert (parts.first, parts.last, parts.middle) == (first, last, middle)


def test_error_messages_mask_phones_and_stay_short() -> None:
    err = CrmRefused("Bitrix24: phone +79161234567 is invalid " + "x" * 1000)
    assert "+79161234567" not in str(err)
    assert mask_phone("+79161234567") in str(err)
    assert len(str(err)) <= 500
    assert CrmTransient("down").maybe_applied is False


async def test_the_limiter_lets_a_burst_through_then_paces_requests() -> None:
    limiter = RateLimiter(rate=5, burst=3)
    started = time.monotonic()
    for _ in range(3):
        await limiter.acquire()
    burst = time.monotonic() - started
    for _ in range(2):
        await limiter.acquire()
    paced = time.monotonic() - started
    assert burst < 0.3  # paced from the first request it would take 0.4 s
    assert paced >= 2 / 5 * 0.9


async def test_a_pause_holds_every_request_back() -> None:
    limiter = RateLimiter(rate=1000, burst=10)
    limiter.pause(0.1)
    started = time.monotonic()
    await asyncio.gather(limiter.acquire(), limiter.acquire())
    assert time.monotonic() - started >= 0.09


def test_the_crm_kind_and_its_required_settings_are_checked() -> None:
    assert crm_kind(CrmSettings(kind="none")) is None
    assert crm_kind(CrmSettings(kind=" Bitrix24 ")) == "bitrix24"
    with pytest.raises(ConfigError, match="bitrix24 or amocrm"):
        crm_kind(CrmSettings(kind="salesforce"))
    with pytest.raises(ConfigError, match="WEBHOOK_URL"):
        build_connector(CrmSettings(kind="bitrix24"), None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must look like"):
        build_connector(
            CrmSettings(kind="bitrix24", bitrix24_webhook_url=SecretStr("portal.bitrix24.ru")),
            None,  # type: ignore[arg-type]
        )
    with pytest.raises(ConfigError, match="SUBDOMAIN"):
        build_connector(CrmSettings(kind="amocrm"), None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="CLIENT_ID"):
        build_connector(
            CrmSettings(
                kind="amocrm", amocrm_subdomain="shop", amocrm_refresh_token=SecretStr("r")
            ),
            None,  # type: ignore[arg-type]
        )


def test_crm_settings_come_from_the_environment_and_hide_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POVTOR_CRM_KIND", "amocrm")
    monkeypatch.setenv("POVTOR_CRM_AMOCRM_SUBDOMAIN", "shop")
    monkeypatch.setenv("POVTOR_CRM_AMOCRM_ACCESS_TOKEN", "sekret-token")
    monkeypatch.setenv("POVTOR_CRM_EVENTS", '["nps", "complaint"]')
    settings = Settings()
    assert settings.crm.kind == "amocrm"
    assert settings.crm.events == ["nps", "complaint"]
    assert "sekret-token" not in repr(settings)


def test_the_shipped_env_example_configures_no_crm_and_the_default_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = Path(__file__).parents[3] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    crm = Settings().crm
    assert crm_kind(crm) is None
    assert parse_kinds(crm.events) == DEFAULT_KINDS
    assert (crm.backfill, crm.external_id_is_crm_id, crm.max_attempts) == (False, False, 10)
