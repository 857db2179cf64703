"""The CRM sync built from settings (``POVTOR_CRM_*``), for the worker and the CLI."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_sync.connectors.amocrm import AmoCrm, base_url
from crm_sync.connectors.amocrm_auth import AmoAuth, OAuthClient, Tokens
from crm_sync.connectors.bitrix24 import Bitrix24
from crm_sync.connectors.http import CrmHttp, RateLimiter
from crm_sync.outbound.engine import CrmSync
from crm_sync.outbound.metrics import CrmMetrics
from crm_sync.outbound.options import SyncOptions
from crm_sync.outbound.selection import parse_kinds
from crm_sync.outbound.tokens import SqlTokenStore
from povtor.db import is_sqlite
from povtor.errors import ConfigError
from povtor.ports import ClientLookup, CrmConnector, TimelineFeed
from povtor.settings import CrmSettings, Settings

KINDS = ("bitrix24", "amocrm")
DEFAULT_RATE = {"bitrix24": 2.0, "amocrm": 7.0}  # the CRMs' own limits, requests per second
DEFAULT_BURST = {"bitrix24": 10, "amocrm": 1}  # Bitrix24's bucket holds 50; amoCRM counts 1 s


def crm_kind(crm: CrmSettings) -> str | None:
    """The configured CRM, or None when the sync is off."""
    kind = crm.kind.strip().lower()
    if kind in ("", "none", "off"):
        return None
    if kind not in KINDS:
        raise ConfigError(f"POVTOR_CRM_KIND must be none, bitrix24 or amocrm, not {crm.kind!r}")
    return kind


def check_config(crm: CrmSettings) -> str | None:
    """The configured CRM's kind once its settings can work, or None when the sync is off;
    raises ConfigError naming the setting to fix. Sends nothing (the worker checks this
    before it starts anything)."""
    kind = crm_kind(crm)
    if kind is None:
        return None
    if kind == "bitrix24":
        if crm.bitrix24_webhook_url is None:
            raise ConfigError("Bitrix24 needs POVTOR_CRM_BITRIX24_WEBHOOK_URL")
        url = crm.bitrix24_webhook_url.get_secret_value()
        if not url.startswith(("https://", "http://")) or "/rest/" not in url:
            raise ConfigError(
                "POVTOR_CRM_BITRIX24_WEBHOOK_URL must look like "
                "https://<portal>/rest/<user id>/<token>/"
            )
        return kind
    try:
        base_url(crm.amocrm_subdomain, crm.amocrm_base_url)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if _secret(crm.amocrm_refresh_token) is not None:
        if not (
            crm.amocrm_client_id and _secret(crm.amocrm_client_secret) and crm.amocrm_redirect_uri
        ):
            raise ConfigError(
                "an amoCRM refresh token needs POVTOR_CRM_AMOCRM_CLIENT_ID, "
                "POVTOR_CRM_AMOCRM_CLIENT_SECRET and POVTOR_CRM_AMOCRM_REDIRECT_URI"
            )
    elif _secret(crm.amocrm_access_token) is None:
        raise ConfigError(
            "amoCRM needs POVTOR_CRM_AMOCRM_ACCESS_TOKEN (a long-lived token) or a refresh token"
        )
    return kind


def build_connector(crm: CrmSettings, sessions: async_sessionmaker[AsyncSession]) -> CrmConnector:
    kind = check_config(crm)
    if kind is None:
        raise ConfigError("no CRM configured (POVTOR_CRM_KIND=bitrix24 or amocrm)")
    limiter = RateLimiter(crm.rate_per_s or DEFAULT_RATE[kind], crm.burst or DEFAULT_BURST[kind])
    if kind == "bitrix24":
        assert crm.bitrix24_webhook_url is not None  # checked above
        http = CrmHttp("Bitrix24", limiter, timeout_s=crm.timeout_s)
        return Bitrix24(
            crm.bitrix24_webhook_url.get_secret_value(),
            http,
            responsible_id=crm.bitrix24_responsible_id,
        )
    base = base_url(crm.amocrm_subdomain, crm.amocrm_base_url)
    configured = Tokens(
        access_token=_secret(crm.amocrm_access_token),
        refresh_token=_secret(crm.amocrm_refresh_token),
    )
    oauth = None
    if configured.refresh_token is not None:
        secret = _secret(crm.amocrm_client_secret)
        # check_config made sure all three are set
        oauth = OAuthClient(
            crm.amocrm_client_id or "", secret or "", crm.amocrm_redirect_uri or ""
        )
    http = CrmHttp("amoCRM", limiter, timeout_s=crm.timeout_s)
    auth = AmoAuth(http, base, SqlTokenStore(sessions, "amocrm", configured), oauth)
    return AmoCrm(base, http, auth, responsible_user_id=crm.amocrm_responsible_user_id)


def sync_options(settings: Settings) -> SyncOptions:
    crm = settings.crm
    return SyncOptions(
        kinds=parse_kinds(crm.events),
        batch_size=crm.batch_size,
        scan_size=max(crm.batch_size, 1000),
        poll_interval_s=crm.poll_interval_s,
        max_attempts=crm.max_attempts,
        retry_backoff_s=crm.retry_backoff_s,
        retry_max_s=crm.retry_max_s,
        lease_s=crm.lease_s,
        gap_wait_s=0.0 if is_sqlite(settings.db_url) else crm.gap_wait_s,
        backfill=crm.backfill,
        external_id_is_crm_id=crm.external_id_is_crm_id,
        timezone=settings.default_timezone,
    )


def build_sync(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clients: ClientLookup,
    *,
    feed: TimelineFeed,
    owner: str,
    metrics: CrmMetrics | None = None,
) -> CrmSync:
    """The sync of the configured CRM (close ``sync.connector`` when done), following the
    timeline through ``feed``."""
    options = sync_options(settings)
    connector = build_connector(settings.crm, sessions)
    return CrmSync(sessions, connector, clients, options, feed=feed, owner=owner, metrics=metrics)


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return None if getter is None else str(getter()) or None
