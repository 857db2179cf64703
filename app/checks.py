"""Start-up checks: every setting that cannot work is refused before anything starts.

Each refusal is one :class:`ConfigError` (or :class:`StoreError` for the database) whose
message names the setting to change; ``povtor run`` prints it as one line and exits 2. Checks
that need the outside world (the database, the ports) run in :func:`app.runtime.build`
before any service starts.
"""

from __future__ import annotations

import importlib.util
import os
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.outbound.build import check_config as check_crm_config
from povtor.db import is_sqlite, unsupported_driver
from povtor.errors import ConfigError, StoreError
from povtor.settings import Settings


def check_settings(settings: Settings) -> None:
    """Raise ConfigError for the first setting that cannot work (nothing is started yet)."""
    problem = unsupported_driver(settings.db_url)
    if problem is not None:
        raise ConfigError(problem)
    _check_telegram(settings)
    check_crm_config(settings.crm)
    if settings.sip.enabled:
        _check_trunks(settings)
    if settings.recordings.s3_bucket and importlib.util.find_spec("boto3") is None:
        raise ConfigError(
            "POVTOR_RECORDINGS_S3_BUCKET is set but boto3 is not installed: "
            "pip install 'povtor[s3]' (or unset the bucket to keep recordings on disk)"
        )
    d = settings.dashboard
    same = (d.host, d.port) == (settings.metrics_host, settings.metrics_port)
    if d.enabled and same and d.port != 0:  # 0: each gets a free port of its own
        raise ConfigError(
            f"POVTOR_DASHBOARD_PORT and POVTOR_METRICS_PORT are both {d.port}: change one"
        )


def _check_telegram(settings: Settings) -> None:
    tg = settings.telegram
    if not tg.enabled:
        return
    mode = tg.mode.strip().lower()
    if mode not in ("polling", "webhook"):
        raise ConfigError(f"POVTOR_TELEGRAM_MODE is {tg.mode!r}: use polling or webhook")
    if mode == "webhook" and (not tg.webhook_url or tg.webhook_secret is None):
        raise ConfigError(
            "webhook mode needs POVTOR_TELEGRAM_WEBHOOK_URL and POVTOR_TELEGRAM_WEBHOOK_SECRET"
        )


def _check_trunks(settings: Settings) -> None:
    from voice.sip.trunks import load_trunks

    load_trunks(settings.sip)  # raises ConfigError naming the file and the trunk


async def check_database(engine: AsyncEngine) -> None:
    """The database answers and has its schema; else StoreError in one line saying what to do."""
    where = _where(engine)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            try:
                await conn.execute(text("SELECT version_num FROM alembic_version LIMIT 1"))
            except SQLAlchemyError:
                raise StoreError(
                    f"the database {where} has no Povtor schema: run `povtor db upgrade`"
                ) from None
    except StoreError:
        raise
    except Exception as err:  # driver errors (asyncpg's own, not wrapped at connect), OSError
        raise StoreError(f"cannot use the database {where}: {_reason(err)}") from None


def _where(engine: AsyncEngine) -> str:
    url = engine.url
    if is_sqlite(str(url.drivername)):
        return str(url.database)
    parts = urlsplit(url.render_as_string(hide_password=True))
    return f"{url.database!r} on {parts.hostname}:{url.port or 5432}"


def bind_error(err: OSError) -> str:
    """'Address already in use', not asyncio's wrapping of it."""
    return os.strerror(err.errno) if err.errno else str(err)


def _reason(err: BaseException) -> str:
    """The driver's own words, first line only (SQLAlchemy appends links and SQL)."""
    inner = getattr(err, "orig", None) or err
    message = str(inner).strip().splitlines()
    text_ = message[0] if message else type(inner).__name__
    return text_.removeprefix("(") or type(inner).__name__
