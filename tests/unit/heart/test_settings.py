from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from povtor.settings import Settings


def test_shipped_env_example_loads_into_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = Path(__file__).parents[3] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == Path("data")
    assert settings.outreach.winback_after_days == [30, 90, 180]
    assert settings.outreach.call_weekday_start == time(9, 0)
    assert settings.sip.max_concurrent_calls == 30
    assert settings.call.tts_voice == "ru"
    assert settings.call.tts_engine == "piper"
    assert settings.call.piper_voice == "ru_RU-irina-medium"
    assert settings.outreach.retry_busy == "30:3"
    assert settings.metrics_port == 9108
    assert settings.db_url == f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'povtor.db')}"


def test_environment_overrides_and_secrets_stay_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POVTOR_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("POVTOR_SIP_PASSWORD", "hunter2")
    monkeypatch.setenv("POVTOR_TELEGRAM_BOT_TOKEN", "1:abc")
    settings = Settings()
    assert settings.db_url == "postgresql+asyncpg://u@h/db"
    assert settings.sip.password is not None
    assert settings.sip.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings)
    assert "1:abc" not in repr(settings)
    assert settings.telegram.enabled


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key = settings.resolved_secret_key()
    assert len(key) >= 32
    assert Settings(data_dir=tmp_path).resolved_secret_key() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
