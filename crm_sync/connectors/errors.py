"""How a CRM request failed, as the outcome sync needs to know it.

Every message is safe to store and log: no tokens, phone numbers masked.
"""

from __future__ import annotations

from povtor.errors import CrmUnavailable, PovtorError
from povtor.logs import mask_text

MAX_MESSAGE = 500


def safe(message: str) -> str:
    """A message fit for logs and the push table: phones masked, length bounded."""
    return mask_text(" ".join(message.split()))[:MAX_MESSAGE]


class CrmTransient(CrmUnavailable):
    """Try again later (network, 5xx, authorisation to be fixed by an operator).

    ``maybe_applied``: the CRM may have carried the request out (a timeout after sending, a 5xx
    answer), so a retry of a create must look for the result first."""

    def __init__(self, message: str, *, maybe_applied: bool = False) -> None:
        super().__init__(safe(message))
        self.maybe_applied = maybe_applied


class CrmRateLimited(CrmTransient):
    """The CRM refused the request for its rate limit; nothing was applied."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, maybe_applied=False)
        self.retry_after = retry_after


class CrmAuthFailed(CrmTransient):
    """Credentials refused (expired, revoked, missing scope): an operator has to act."""


class CrmRefused(PovtorError):
    """The CRM refused this one request (validation, a missing entity); retrying won't help."""

    def __init__(self, message: str) -> None:
        super().__init__(safe(message))
