"""Which clients the demo generator made, and the guard that keeps real runs away from them.

The generator marks its clients three ways (``DEMO-`` external ids, phones in the +7 979 0
block that no operator holds, Telegram chat ids from 9,000,000,000); any one is enough. A
worker that is not the demo's executes no attempt for such a client: it records the attempt as
unreachable with the reason, and logs it once per client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from crm_sync.demo.generate import CHAT_ID_BASE, DEMO_PHONE_BLOCK, DEMO_PREFIX
from povtor.domain import Attempt, ChannelKind, Client, Outcome, OutcomeKind
from povtor.ports import Channel

log = logging.getLogger(__name__)

DEMO_ID_PREFIX = DEMO_PREFIX
DEMO_PHONE_PREFIX = DEMO_PHONE_BLOCK
DEMO_CHAT_FROM = CHAT_ID_BASE


def demo_mark(client: Client) -> str | None:
    """Why ``client`` is a demo client, or None when it is not one."""
    if client.external_id.startswith(DEMO_ID_PREFIX):
        return f"its id starts with {DEMO_ID_PREFIX}"
    if any(phone.startswith(DEMO_PHONE_PREFIX) for phone in client.phones):
        return "its phone is in the demo block +7 979 0"
    if client.telegram_chat_id is not None and client.telegram_chat_id >= DEMO_CHAT_FROM:
        return "its Telegram chat id is a demo one"
    return None


@dataclass
class DemoClientGuard:
    """Wraps a real channel: demo clients are refused, everyone else goes through."""

    inner: Channel
    kind: ChannelKind = field(init=False)
    _told: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.kind = self.inner.kind

    async def execute(self, attempt: Attempt, client: Client) -> Outcome:
        why = demo_mark(client)
        if why is None:
            return await self.inner.execute(attempt, client)
        if client.id not in self._told:
            self._told.add(client.id)
            log.warning(
                "refused to contact client %s by %s: a demo client (%s); only `povtor demo` "
                "reaches demo clients, through its own local stand-ins",
                client.id,
                self.kind,
                why,
            )
        return Outcome(
            OutcomeKind.UNREACHABLE,
            detail=f"demo client ({why}): a real run never contacts demo clients",
        )


def guard_channels(channels: dict[ChannelKind, Channel]) -> dict[ChannelKind, Channel]:
    return {kind: DemoClientGuard(channel) for kind, channel in channels.items()}
