"""Consent per channel and opt-out everywhere."""

from __future__ import annotations

from collections.abc import Iterable

from povtor.domain import ChannelKind, Client, ConsentChannel


def channel_permitted(
    channel: ChannelKind,
    *,
    opted_out: bool,
    consents: Iterable[tuple[ConsentChannel, bool]],
    require_consent: bool,
) -> bool:
    """Opt-out forbids everything; an explicit refusal forbids its channel; with
    ``require_consent`` only explicitly granted channels are used."""
    if opted_out:
        return False
    granted = {c: g for c, g in consents}.get(ConsentChannel(channel.value))
    if granted is None:
        return not require_consent
    return granted


def client_consents(client: Client) -> tuple[tuple[ConsentChannel, bool], ...]:
    return tuple((c.channel, c.granted) for c in client.consents)
