"""Fixtures shared with the call-engine tests (engines on loopback, recording writer)."""

from __future__ import annotations

from tests.integration.sip.conftest import engine_for, writer

__all__ = ["engine_for", "writer"]
