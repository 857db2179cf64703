"""When a refused REFER lets Povtor place the manager's call itself, and how a transfer reads in
the client's timeline."""

from __future__ import annotations

import pytest

from voice.transfer import Transfer, transfer_summary

T = "sip:manager@pbx"


@pytest.mark.parametrize(
    ("tried", "bridge"),
    [
        (Transfer(T, "refused", 405, "Method Not Allowed", route="refer"), True),
        (Transfer(T, "refused", 403, "Forbidden", route="refer"), True),
        (Transfer(T, "refused", 501, "Not Implemented", route="refer"), True),
        (Transfer(T, "refused", 603, "Decline", route="refer"), True),  # REFER itself declined
        (Transfer(T, "failed", 503, "Service Unavailable", (100, 503), "refer"), True),
        (Transfer(T, "failed", 404, "Not Found", (100, 404), "refer"), True),
        # the manager's own phone answered the trunk's call: a second call gets the same
        (Transfer(T, "failed", 486, "Busy Here", (100, 486), "refer"), False),
        (Transfer(T, "failed", 603, "Decline", (100, 603), "refer"), False),
        (Transfer(T, "failed", 480, "Temporarily Unavailable", (100, 480), "refer"), False),
        (Transfer(T, "failed", 487, "Request Terminated", (180, 487), "refer"), False),
        # no answer to REFER, no final NOTIFY: the far end may still be placing the call
        (Transfer(T, "refused", None, "no answer to REFER", route="refer"), False),
        (Transfer(T, "failed", None, "no final NOTIFY", (100,), "refer"), False),
        (Transfer(T, "refused", 302, "Moved Temporarily", route="refer"), False),
        (Transfer(T, "connected", 200, "OK", (180, 200), "refer"), False),
        (Transfer(T, "ended", reason="the call ended", route="refer"), False),
        (Transfer(T, "failed", 486, "Busy Here", route="bridge"), False),  # already a bridge
    ],
)
def test_only_a_refer_the_trunk_could_not_carry_out_is_followed_by_a_bridge(
    tried: Transfer, bridge: bool
) -> None:
    assert tried.refer_refused is bridge


@pytest.mark.parametrize(
    ("result", "by", "line"),
    [
        (
            Transfer(T, "connected", 200, route="refer"),
            "step",
            "Перевод на менеджера: клиент соединён с менеджером",
        ),
        (
            Transfer(T, "connected", 200, route="bridge").after_refer(
                Transfer(T, "refused", 405, route="refer")
            ),
            "voice",
            "Перевод на менеджера: клиент попросил менеджера; клиент соединён с менеджером; "
            "вторым звонком через Povtor, оператор связи отказал в REFER (SIP 405)",
        ),
        (
            Transfer(T, "failed", 486, "Busy Here", route="bridge"),
            "keypad",
            "Перевод на менеджера: клиент попросил менеджера; менеджер не ответил (SIP 486); "
            "вторым звонком через Povtor, без REFER",
        ),
        (
            Transfer("", "no_target"),
            "voice",
            "Перевод на менеджера: клиент попросил менеджера; "
            "номер для перевода не задан, менеджер перезвонит",
        ),
    ],
)
def test_the_timeline_line_says_who_asked_and_which_way_it_went(
    result: Transfer, by: str, line: str
) -> None:
    assert transfer_summary({**result.as_data(), "by": by}) == line


def test_a_bridge_after_a_refused_refer_keeps_why_refer_did_not_do() -> None:
    refer = Transfer(T, "failed", 503, "Service Unavailable", (100, 503), "refer")
    data = Transfer(T, "connected", 200, "bridged", route="bridge").after_refer(refer).as_data()
    assert data["route"] == "bridge"
    assert (data["refer_code"], data["refer_reason"], data["progress"]) == (
        503, "Service Unavailable", [100, 503],
    )  # fmt: skip
