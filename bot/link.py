"""Whether this worker reaches the Telegram Bot API, said once per change.

Every call to Telegram that fails for Telegram's reasons (no route, refused connection, timeout,
5xx, 401, 409) and every call that succeeds after a failure goes through :class:`TelegramLink`:
it reports each change of state to the worker's health board (component ``telegram``: DOWN
while unreachable or the token is refused, DEGRADED on a polling conflict or while Telegram
answers 429, OK again), which
logs it once and shows it on ``/healthz`` and the dashboard, and which the dispatcher reads to
hold messages back; without a board the link logs the change itself. Never a traceback per
retry. It also gives the capped backoff for the next try.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiogram.exceptions import (
    ClientDecodeError,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramServerError,
    TelegramUnauthorizedError,
)

from povtor.health import HealthReporter, HealthState

log = logging.getLogger(__name__)
PART = "telegram"

OK = "ok"
STARTING = "starting"
UNREACHABLE = "unreachable"
TOKEN_REFUSED = "token_refused"
CONFLICT = "conflict"
THROTTLED = "throttled"  # 429 Too Many Requests: sending works, slower, as Telegram asks
_THROTTLE_QUIET_S = 30.0  # without a message sent, this long without a 429 ends the storm

# the errors that say "Telegram (or the way to it) is not working", not "this message is bad"
LINK_ERRORS = (
    TelegramNetworkError,
    TelegramServerError,
    TelegramUnauthorizedError,
    TelegramConflictError,
    ClientDecodeError,
)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    state: str
    reason: str


def diagnose(err: BaseException, host: str) -> Diagnosis:
    """What a failed call says about the link (pure; the reason names the host, not the token)."""
    if isinstance(err, TelegramUnauthorizedError):
        return Diagnosis(
            TOKEN_REFUSED,
            f"Telegram ({host}) refused the bot token (401 Unauthorized): the token was "
            "revoked or mistyped; set a valid POVTOR_TELEGRAM_BOT_TOKEN (from @BotFather) and "
            "restart",
        )
    if isinstance(err, TelegramConflictError):
        return Diagnosis(
            CONFLICT,
            f"Telegram ({host}) answered 409 Conflict: another program polls this bot or a "
            f"webhook is set ({_short(err)})",
        )
    if isinstance(err, TelegramServerError):
        return Diagnosis(UNREACHABLE, f"the Bot API at {host} failed: {_short(err)}")
    if isinstance(err, ClientDecodeError):
        return Diagnosis(UNREACHABLE, f"the Bot API at {host} answered something not JSON")
    return Diagnosis(UNREACHABLE, f"cannot reach the Bot API at {host}: {_short(err)}")


def _short(err: BaseException) -> str:
    text = getattr(err, "message", None) or str(err) or type(err).__name__
    return " ".join(str(text).split())[:200]


class TelegramLink:
    """The state of this worker's connection to the Bot API."""

    def __init__(
        self,
        host: str,
        health: HealthReporter | None = None,
        *,
        token: str = "",
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.host = host
        self._health = health
        self._token = token
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self.state = STARTING
        self.reason = f"connecting to the Bot API at {host}"
        self.failures = 0  # consecutive failed calls
        self.changed_at = time.monotonic()
        self._throttled_until = 0.0

    @property
    def ok(self) -> bool:
        return self.state == OK

    @property
    def usable(self) -> bool:
        """Messages can be tried: starting (the first try tells) or a polling conflict
        (sending works) count, an unreachable API or a refused token do not."""
        return self.state in (OK, STARTING, CONFLICT, THROTTLED)

    @property
    def token_refused(self) -> bool:
        return self.state == TOKEN_REFUSED

    def succeeded(self, *, sent: bool = False) -> None:
        """A call went through; ``sent``: a message (what a 429 storm holds back)."""
        self.failures = 0
        if self.state == OK:
            return
        if self.state == THROTTLED and not sent and time.monotonic() < self._throttled_until:
            return  # a poll went through, but messages were refused a moment ago
        if self.state == STARTING:
            log.info("Telegram Bot API at %s reached", self.host)
        elif self._health is None:
            log.warning(
                "Telegram Bot API at %s reachable again (was %s for %.0f s)",
                self.host,
                self.state,
                time.monotonic() - self.changed_at,
            )
        self._set(OK, "")

    def failed(self, err: BaseException) -> Diagnosis:
        """Record a failed call; logs only when the state changes."""
        found = diagnose(err, self.host)
        reason = found.reason.replace(self._token, "***") if self._token else found.reason
        self.failures += 1
        if found.state != self.state:
            if self._health is not None:
                pass  # the board logs the change once
            elif found.state == TOKEN_REFUSED:
                log.error("Telegram channel stopped: %s", reason)
            else:
                log.warning("Telegram channel degraded (%s): %s", found.state, reason)
            self._set(found.state, reason)
        return Diagnosis(found.state, reason)

    def throttled(self, retry_after: float) -> None:
        """Telegram answered 429 and asked to wait ``retry_after`` seconds: DEGRADED (said
        once, not per 429) until a call succeeds after the wait."""
        until = time.monotonic() + retry_after + _THROTTLE_QUIET_S
        self._throttled_until = max(self._throttled_until, until)
        if self.state in (OK, STARTING, CONFLICT):
            self._set(
                THROTTLED,
                f"Telegram ({self.host}) answers 429 Too Many Requests: messages wait as it asks",
            )

    def next_delay(self) -> float:
        """Capped exponential backoff after ``failures`` consecutive failures."""
        steps = max(self.failures - 1, 0)
        return min(self._backoff_s * 2.0 ** min(steps, 16), self._backoff_max_s)

    def _set(self, state: str, reason: str) -> None:
        self.state, self.reason = state, reason
        self.changed_at = time.monotonic()
        self._report()

    def _report(self) -> None:
        """One report per change of state (a new wording of the same trouble is not news)."""
        if self._health is None or self.state == STARTING:
            return
        if self.ok:
            self._health.report(PART, HealthState.OK)
        elif self.usable:  # a polling conflict or 429s: sending works
            self._health.report(PART, HealthState.DEGRADED, self.reason)
        else:
            self._health.report(PART, HealthState.DOWN, self.reason)
