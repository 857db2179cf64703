"""Consent per channel and per kind of contact, and opt-out everywhere.

The defaults follow the Russian law on advertising (38-FZ art. 18): an advertising contact
through a telecom channel (an automatic call, a message) needs the client's prior consent, so
reorder offers and win-back contacts go out only with a recorded advertising consent for that
channel. Service contacts (an NPS survey about a delivered order) need none, but a client can
refuse a channel. Opt-out wins over everything, in every channel.
"""

from __future__ import annotations

from collections.abc import Iterable

from povtor.domain import ChannelKind, Client, ConsentChannel, ContactKind, Purpose, contact_kind

Grants = Iterable[tuple[ConsentChannel, bool]]


def channel_permitted(
    channel: ChannelKind,
    *,
    opted_out: bool,
    consents: Grants,
    require_consent: bool,
    purpose: Purpose | None = None,
    ad_consents: Grants = (),
    require_ad_consent: bool = True,
) -> bool:
    """May ``channel`` be used for ``purpose``?

    - opted out: never;
    - an explicit refusal of the channel: never (whatever the purpose);
    - ``require_consent``: only channels explicitly granted;
    - advertising purposes: an explicit advertising refusal forbids the channel; with
      ``require_ad_consent`` (the default) only an explicit advertising grant allows it.
    """
    if opted_out:
        return False
    key = ConsentChannel(channel.value)
    granted = dict(consents).get(key)
    if granted is False or (granted is None and require_consent):
        return False
    if purpose is None or contact_kind(purpose) is ContactKind.SERVICE:
        return True
    ad = dict(ad_consents).get(key)
    if ad is None:
        return not require_ad_consent
    return ad


def client_consents(client: Client) -> tuple[tuple[ConsentChannel, bool], ...]:
    """The client's service (channel) consents."""
    return tuple((c.channel, c.granted) for c in client.consents if c.kind is ContactKind.SERVICE)


def client_ad_consents(client: Client) -> tuple[tuple[ConsentChannel, bool], ...]:
    """The client's advertising consents."""
    return tuple(
        (c.channel, c.granted) for c in client.consents if c.kind is ContactKind.ADVERTISING
    )
