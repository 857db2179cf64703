"""Handing a call to a person (SIP REFER, RFC 3515): the result and how it reads to a manager."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Stage = Literal["connected", "refused", "failed", "ended", "unsupported"]


@dataclass(frozen=True, slots=True)
class Transfer:
    """How a transfer went.

    ``stage``: ``connected`` (the far end reported the new call answered: NOTIFY with a 2xx
    sipfrag), ``refused`` (REFER answered 3xx-6xx, or not at all), ``failed`` (REFER accepted,
    then a NOTIFY reported a failure, or no final NOTIFY came in time), ``ended`` (the call
    ended during the transfer), ``unsupported`` (this call cannot transfer). ``code`` is the SIP
    status that decided it, when there was one.
    """

    target: str
    stage: Stage
    code: int | None = None
    reason: str = ""
    progress: tuple[int, ...] = ()  # sipfrag statuses the NOTIFYs reported, in order

    @property
    def connected(self) -> bool:
        return self.stage == "connected"

    def as_data(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "stage": self.stage,
            "connected": self.connected,
            "code": self.code,
            "reason": self.reason,
            "progress": list(self.progress),
        }


_STAGE_TEXT = {
    "connected": "клиент соединён с менеджером",
    "refused": "оператор связи отказал в переводе",
    "failed": "менеджер не ответил",
    "ended": "звонок оборвался во время перевода",
    "unsupported": "перевод невозможен на этой линии",
}


def transfer_summary(data: dict[str, Any]) -> str:
    """One Russian line for the client's timeline: «Перевод на менеджера: ...»."""
    text = _STAGE_TEXT.get(str(data.get("stage")), "результат неизвестен")
    code = data.get("code")
    if code and not data.get("connected"):
        text = f"{text} (SIP {code})"
    return f"Перевод на менеджера: {text}"
