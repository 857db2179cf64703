"""Fault tests reuse the call-engine fixtures (engines on loopback) and the outreach ones
(queue, dispatcher, a clock the test moves)."""

from __future__ import annotations

from tests.integration.outreach.conftest import clock, make_dispatcher, queue
from tests.integration.sip.conftest import engine_for, writer

__all__ = ["clock", "engine_for", "make_dispatcher", "queue", "writer"]
