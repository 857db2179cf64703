"""Consent per kind of contact: advertising needs a recorded consent, service does not,
opt-out always wins."""

from __future__ import annotations

import pytest

from outreach.permissions import channel_permitted
from povtor.domain import ChannelKind, ConsentChannel, ContactKind, Purpose, contact_kind

CALL, TG = ChannelKind.CALL, ChannelKind.TELEGRAM
C, T = ConsentChannel.CALL, ConsentChannel.TELEGRAM
AD_CALL = ((C, True),)
AD_CALL_NO = ((C, False),)


@pytest.mark.parametrize(
    ("purpose", "kind"),
    [
        (Purpose.NPS, ContactKind.SERVICE),
        (Purpose.REORDER, ContactKind.ADVERTISING),
        (Purpose.WINBACK, ContactKind.ADVERTISING),
    ],
)
def test_nps_is_service_and_offers_are_advertising(purpose: Purpose, kind: ContactKind) -> None:
    assert contact_kind(purpose) is kind


@pytest.mark.parametrize(
    ("channel", "purpose", "opted_out", "service", "ads", "require_ads", "expected"),
    [
        # the default: advertising only with a recorded advertising consent
        (CALL, Purpose.REORDER, False, (), (), True, False),
        (CALL, Purpose.WINBACK, False, (), (), True, False),
        (CALL, Purpose.REORDER, False, (), AD_CALL, True, True),
        (TG, Purpose.REORDER, False, (), AD_CALL, True, False),  # consent is per channel
        (TG, Purpose.REORDER, False, (), ((T, True),), True, True),
        # service contacts need none
        (CALL, Purpose.NPS, False, (), (), True, True),
        (CALL, Purpose.NPS, False, (), AD_CALL_NO, True, True),  # ads refused, survey fine
        # an explicit refusal of the channel stops every kind
        (CALL, Purpose.NPS, False, ((C, False),), (), True, False),
        (CALL, Purpose.REORDER, False, ((C, False),), AD_CALL, True, False),
        # opt-out wins over every consent, in every channel
        (CALL, Purpose.NPS, True, ((C, True),), AD_CALL, True, False),
        (TG, Purpose.REORDER, True, ((T, True),), ((T, True),), True, False),
        # consent not required for ads (a business's own choice): a refusal still holds
        (CALL, Purpose.REORDER, False, (), (), False, True),
        (CALL, Purpose.REORDER, False, (), AD_CALL_NO, False, False),
    ],
)
def test_channel_permitted_by_kind_of_contact(
    channel: ChannelKind,
    purpose: Purpose,
    opted_out: bool,
    service: tuple[tuple[ConsentChannel, bool], ...],
    ads: tuple[tuple[ConsentChannel, bool], ...],
    require_ads: bool,
    expected: bool,
) -> None:
    permitted = channel_permitted(
        channel,
        opted_out=opted_out,
        consents=service,
        require_consent=False,
        purpose=purpose,
        ad_consents=ads,
        require_ad_consent=require_ads,
    )
    assert permitted is expected
