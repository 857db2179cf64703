"""amoCRM authorisation: a long-lived token, or OAuth 2 access tokens kept fresh.

amoCRM rotates the refresh token on every refresh (``POST /oauth2/access_token``,
``grant_type=refresh_token``) and revokes the old one, so the new pair is saved (through a
:class:`TokenStore`) before it is used: a worker restarted after a refresh must not go back to
the revoked token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from crm_sync.connectors.errors import CrmAuthFailed, CrmRateLimited, CrmTransient
from crm_sync.connectors.http import CrmHttp
from povtor.db import utcnow

log = logging.getLogger(__name__)

REFRESH_AHEAD = timedelta(seconds=60)  # refresh this long before the access token expires


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str | None
    refresh_token: str | None = None
    expires_at: datetime | None = None


class TokenStore(Protocol):
    async def load(self) -> Tokens: ...

    async def save(self, tokens: Tokens) -> None: ...


@dataclass(frozen=True, slots=True)
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uri: str


class AmoAuth:
    def __init__(
        self,
        http: CrmHttp,
        base_url: str,
        store: TokenStore,
        oauth: OAuthClient | None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/oauth2/access_token"
        self._store = store
        self._oauth = oauth
        self._clock = clock
        self._tokens: Tokens | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    async def token(self) -> str:
        """The access token to send, refreshed first when it is about to expire."""
        async with self._lock:
            if self._tokens is None:
                self._tokens = await self._store.load()
            tokens = self._tokens
            expiring = (
                tokens.expires_at is not None
                and self._clock() >= tokens.expires_at - REFRESH_AHEAD
            )
            if (tokens.access_token is None or expiring) and self._can_refresh(tokens):
                tokens = await self._refresh(tokens)
            if tokens.access_token is None:
                raise CrmAuthFailed("amoCRM: no access token configured")
            return tokens.access_token

    async def rejected(self, access_token: str) -> bool:
        """The CRM answered 401 to ``access_token``: refresh once (unless another request
        already did). False when there is nothing to refresh with."""
        async with self._lock:
            tokens = self._tokens or await self._store.load()
            if tokens.access_token != access_token:
                return True  # refreshed meanwhile: try the new one
            if not self._can_refresh(tokens):
                return False
            await self._refresh(tokens)
            return True

    def _can_refresh(self, tokens: Tokens) -> bool:
        return self._oauth is not None and tokens.refresh_token is not None

    async def _refresh(self, tokens: Tokens) -> Tokens:
        assert self._oauth is not None
        assert tokens.refresh_token is not None
        resp = await self._http.request(
            "POST",
            self._url,
            json_body={
                "client_id": self._oauth.client_id,
                "client_secret": self._oauth.client_secret,
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token,
                "redirect_uri": self._oauth.redirect_uri,
            },
        )
        body: Any = resp.body if isinstance(resp.body, dict) else {}
        if resp.status == 429:
            raise CrmRateLimited("amoCRM token refresh: HTTP 429", resp.retry_after(1.0))
        if resp.status >= 500:
            raise CrmTransient(f"amoCRM token refresh: HTTP {resp.status}")
        if resp.status != 200 or not body.get("access_token") or not body.get("refresh_token"):
            why = body.get("hint") or body.get("detail") or body.get("title") or ""
            raise CrmAuthFailed(
                f"amoCRM refused the refresh token (HTTP {resp.status} {why}); authorise the "
                "integration again and set POVTOR_CRM_AMOCRM_REFRESH_TOKEN"
            )
        fresh = Tokens(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=self._clock() + timedelta(seconds=int(body.get("expires_in") or 86400)),
        )
        # Kept and saved before use: the old refresh token is revoked from now on. If saving
        # fails, this process still holds the new pair and saves it at the next refresh.
        self._tokens = fresh
        await self._store.save(fresh)
        self.refreshes += 1
        log.info("amoCRM access token refreshed (valid until %s)", fresh.expires_at)
        return fresh


class MemoryTokenStore:
    """Tokens kept in memory only (a long-lived token needs nothing else)."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    async def load(self) -> Tokens:
        return self.tokens

    async def save(self, tokens: Tokens) -> None:
        self.tokens = tokens
