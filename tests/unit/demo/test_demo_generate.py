"""The demo business generator: deterministic, valid fictional phones, plausible histories."""

from __future__ import annotations

from datetime import date

import phonenumbers

from crm_sync.demo.generate import DEMO_PHONE_BLOCK, DemoSpec, demo_phone, generate

SPEC = DemoSpec(clients=300, seed=7, until=date(2025, 6, 30))


def test_same_seed_same_business() -> None:
    assert list(generate(SPEC)) == list(generate(SPEC))
    assert list(generate(SPEC)) != list(generate(DemoSpec(300, seed=8, until=SPEC.until)))


def test_phones_are_valid_russian_mobiles_in_the_demo_block_and_unique() -> None:
    phones = [demo_phone(i) for i in range(0, 1_000_000, 997)]
    assert len(set(phones)) == len(phones)
    for phone in phones[:200]:
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        assert phone.startswith(DEMO_PHONE_BLOCK)


def test_histories_have_cycles_churn_nps_and_chats() -> None:
    clients = list(generate(SPEC))
    assert all(c.orders for c in clients)
    assert all(
        a.placed_at < b.placed_at
        for c in clients
        for a, b in zip(c.orders, c.orders[1:], strict=False)
    )
    assert 0.2 < sum(c.churned for c in clients) / len(clients) < 0.5
    assert any(c.nps for c in clients)
    assert any(n.score is not None and n.score <= 6 and n.reason for c in clients for n in c.nps)
    assert 0.15 < sum(c.telegram_chat_id is not None for c in clients) / len(clients) < 0.45
    assert len({c.timezone for c in clients}) >= 8
