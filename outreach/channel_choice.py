"""Which channel reaches a client, and when to fall back from Telegram to a call."""

from __future__ import annotations

from collections.abc import Callable

from povtor.domain import ChannelKind


def choose_channel(
    *,
    preferred: ChannelKind | None,
    telegram_linked: bool,
    telegram_reachable: bool,
    permitted: Callable[[ChannelKind], bool],
) -> ChannelKind | None:
    """The client's preferred channel if usable, else Telegram if linked and reachable, else a
    call; None when no channel may be used."""
    telegram_ok = telegram_linked and telegram_reachable and permitted(ChannelKind.TELEGRAM)
    call_ok = permitted(ChannelKind.CALL)
    if preferred is ChannelKind.CALL and call_ok:
        return ChannelKind.CALL
    if telegram_ok:
        return ChannelKind.TELEGRAM
    if call_ok:
        return ChannelKind.CALL
    return None
