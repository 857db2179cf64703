"""What each adapter would connect to when configured as a user would (only the required
settings, from the environment), built through the code the worker uses; nothing is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.session import api_host, build_bot
from crm_sync.outbound.build import build_connector
from povtor.db import create_engine, session_factory
from povtor.settings import Settings
from tests.fakes.telegram_api import TOKEN
from voice.model_fetch import model_url
from voice.models import spec_for
from voice.sip.trunks import load_trunks


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean POVTOR_* environment, and no .env file in the working directory."""
    import os

    for name in list(os.environ):
        if name.startswith("POVTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POVTOR_DATA_DIR", str(tmp_path))
    return monkeypatch


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    yield session_factory(engine)
    await engine.dispose()


async def test_bot_with_only_a_token_talks_to_telegrams_production_api(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("POVTOR_TELEGRAM_BOT_TOKEN", TOKEN)
    tg = Settings().telegram
    bot = build_bot(tg)
    try:
        url = bot.session.api.api_url(bot.token, "getMe")
        assert url == f"https://api.telegram.org/bot{TOKEN}/getMe"
        assert bot.session.api.file_url(bot.token, "a/b") == (
            f"https://api.telegram.org/file/bot{TOKEN}/a/b"
        )
        assert api_host(tg) == "api.telegram.org"
    finally:
        await bot.session.close()


async def test_bot_with_an_api_base_talks_to_that_server(env: pytest.MonkeyPatch) -> None:
    env.setenv("POVTOR_TELEGRAM_BOT_TOKEN", TOKEN)
    env.setenv("POVTOR_TELEGRAM_API_BASE", "http://127.0.0.1:8081/")
    tg = Settings().telegram
    bot = build_bot(tg)
    try:
        assert bot.session.api.api_url(bot.token, "getMe") == (
            f"http://127.0.0.1:8081/bot{TOKEN}/getMe"
        )
        assert api_host(tg) == "127.0.0.1:8081"
    finally:
        await bot.session.close()


def test_an_api_base_without_a_scheme_is_refused_with_the_setting_named(
    env: pytest.MonkeyPatch,
) -> None:
    from povtor.errors import ConfigError

    env.setenv("POVTOR_TELEGRAM_BOT_TOKEN", TOKEN)
    env.setenv("POVTOR_TELEGRAM_API_BASE", "localhost:8081")
    with pytest.raises(ConfigError, match="POVTOR_TELEGRAM_API_BASE"):
        build_bot(Settings().telegram)


async def test_amocrm_base_url_is_built_from_the_subdomain(
    env: pytest.MonkeyPatch,
    sessions: async_sessionmaker,  # type: ignore[type-arg]
) -> None:
    env.setenv("POVTOR_CRM_KIND", "amocrm")
    env.setenv("POVTOR_CRM_AMOCRM_SUBDOMAIN", "kofeinya")
    env.setenv("POVTOR_CRM_AMOCRM_ACCESS_TOKEN", "long-lived-token")
    connector = build_connector(Settings().crm, sessions)
    try:
        assert connector.endpoint == "https://kofeinya.amocrm.ru/api/v4"  # type: ignore[attr-defined]
    finally:
        await connector.aclose()


async def test_bitrix24_requests_go_to_its_webhook_url(
    env: pytest.MonkeyPatch,
    sessions: async_sessionmaker,  # type: ignore[type-arg]
) -> None:
    env.setenv("POVTOR_CRM_KIND", "bitrix24")
    env.setenv("POVTOR_CRM_BITRIX24_WEBHOOK_URL", "https://kofeinya.bitrix24.ru/rest/1/abc123")
    connector = build_connector(Settings().crm, sessions)
    try:
        endpoint = connector.endpoint  # type: ignore[attr-defined]
        assert endpoint == "https://kofeinya.bitrix24.ru/rest/1/abc123/"
    finally:
        await connector.aclose()


@pytest.mark.parametrize(
    ("proxy", "target"),
    [
        ("sip.provider.ru", ("sip.provider.ru", 5060)),
        ("sip.provider.ru:5080", ("sip.provider.ru", 5080)),
        ("192.0.2.10:5062", ("192.0.2.10", 5062)),
    ],
)
def test_the_sip_trunk_calls_through_povtor_sip_proxy(
    env: pytest.MonkeyPatch, proxy: str, target: tuple[str, int]
) -> None:
    env.setenv("POVTOR_SIP_ENABLED", "true")
    env.setenv("POVTOR_SIP_PROXY", proxy)
    trunks = load_trunks(Settings().sip)
    assert list(trunks) == ["default"]
    assert trunks["default"].proxy_addr == target
    assert trunks["default"].registrar_addr == target


def test_models_download_from_the_vosk_model_site_by_default(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    url = model_url(settings.asr.model_base_url, spec_for(settings.asr.model))
    assert url == "https://alphacephei.com/vosk/models/vosk-model-small-ru-0.22.zip"
