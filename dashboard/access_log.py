"""An access log without query strings: searches and filters may carry phone numbers."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from dashboard.context import SESSION
from povtor.logs import mask_text


class SafeAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        session = request.get(SESSION)
        user = getattr(getattr(session, "user", None), "id", "-")
        self.logger.info(
            "%s %s %s %.1fms user=%s",
            request.method,
            mask_text(request.path),
            response.status,
            time * 1000,
            user,
        )
