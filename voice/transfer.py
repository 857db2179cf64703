"""Handing a call to a person: by SIP REFER (RFC 3515), or where the trunk refuses it, by a
second call bridged through Povtor; the result and how it reads to a manager."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Stage = Literal["connected", "refused", "failed", "ended", "unsupported", "no_target"]
Route = Literal["refer", "bridge", ""]
# sipfrag statuses that are the manager's phone answering (busy, unavailable, no answer,
# declined): the transfer reached it, so no second call is tried
MANAGER_ANSWERS = frozenset({408, 480, 486, 487, 600, 603})


@dataclass(frozen=True, slots=True)
class Transfer:
    """How a transfer went.

    ``stage``: ``connected`` (the far end reported the new call answered: NOTIFY with a 2xx
    sipfrag; or the manager answered the bridged call), ``refused`` (REFER answered 3xx-6xx, or
    not at all), ``failed`` (REFER accepted, then a NOTIFY reported a failure, or no final NOTIFY
    came in time; or the manager's call was not answered), ``ended`` (the call ended during the
    transfer), ``unsupported`` (this call cannot transfer), ``no_target`` (no number to transfer
    to is set: a manager calls back). ``code`` is the SIP status that decided it, when there was
    one. ``route``: ``refer`` or ``bridge``, the way it was last tried; ``refer_code`` and
    ``refer_reason`` keep why REFER did not do when the bridge was tried after it.
    """

    target: str
    stage: Stage
    code: int | None = None
    reason: str = ""
    progress: tuple[int, ...] = ()  # sipfrag statuses the NOTIFYs reported, in order
    route: Route = ""
    refer_code: int | None = None
    refer_reason: str = ""

    @property
    def connected(self) -> bool:
        return self.stage == "connected"

    @property
    def refer_refused(self) -> bool:
        """REFER was refused outright (4xx-6xx), or a NOTIFY reported that the trunk could not
        place the new call: Povtor may place it itself. A NOTIFY with the manager's own answer
        (busy, declined, no answer) is not that: a second call would get the same."""
        if self.route != "refer" or self.code is None or self.code < 400:
            return False
        if self.stage == "failed":
            return self.code not in MANAGER_ANSWERS
        return self.stage == "refused"

    def after_refer(self, refer: Transfer) -> Transfer:
        """This (bridge) result, remembering why REFER did not do."""
        return replace(
            self, refer_code=refer.code, refer_reason=refer.reason, progress=refer.progress
        )

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "target": self.target,
            "stage": self.stage,
            "connected": self.connected,
            "code": self.code,
            "reason": self.reason,
            "progress": list(self.progress),
            "route": self.route,
        }
        if self.refer_code is not None:
            data.update(refer_code=self.refer_code, refer_reason=self.refer_reason)
        return data


_STAGE_TEXT = {
    "connected": "клиент соединён с менеджером",
    "refused": "оператор связи отказал в переводе",
    "failed": "менеджер не ответил",
    "ended": "звонок оборвался во время перевода",
    "unsupported": "перевод невозможен на этой линии",
    "no_target": "номер для перевода не задан, менеджер перезвонит",
}


def transfer_summary(data: dict[str, Any]) -> str:
    """One Russian line for the client's timeline: «Перевод на менеджера: ...»."""
    text = _STAGE_TEXT.get(str(data.get("stage")), "результат неизвестен")
    code = data.get("code")
    if code and not data.get("connected"):
        text = f"{text} (SIP {code})"
    if data.get("route") == "bridge":
        refused = data.get("refer_code")
        how = f"оператор связи отказал в REFER (SIP {refused})" if refused else "без REFER"
        text = f"{text}; вторым звонком через Povtor, {how}"
    if data.get("by") in ("voice", "keypad"):
        text = f"клиент попросил менеджера; {text}"
    return f"Перевод на менеджера: {text}"
