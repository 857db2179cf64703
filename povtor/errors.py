"""Errors shared by every part of Povtor.

Adapters translate library errors at their edge into one of these
(``raise CrmUnavailable(...) from err``) so callers handle a small, meaningful set.
"""

from __future__ import annotations


class PovtorError(Exception):
    """Base of every error Povtor raises on purpose."""


class ConfigError(PovtorError):
    """Settings are missing or contradict each other."""


class NotFound(PovtorError):
    """A client, order, attempt or other record does not exist."""


class InvalidInput(PovtorError):
    """Input (a file, a row, a command argument) cannot be used; the message says why."""


class StoreError(PovtorError):
    """The history store failed (connection lost, migration missing)."""


class AlreadyRunning(PovtorError):
    """Another worker holds a resource that only one worker may hold."""


class ChannelError(PovtorError):
    """A channel (Telegram, SIP trunk) failed in a way the caller should know about."""


class ChannelUnavailable(ChannelError):
    """The channel cannot reach the client at all (bot blocked, trunk down)."""


class ChannelDown(ChannelError):
    """Our side of a channel is down (a SIP trunk not answering or not registered): the attempt
    is retried later and nothing is recorded as the client's doing."""


class CrmUnavailable(PovtorError):
    """An external CRM did not answer or refused the request."""


class ModelError(PovtorError):
    """A speech model is missing, corrupt or failed to download."""


class AudioError(PovtorError):
    """An audio file is empty, corrupt or in a format that cannot be decoded."""
