"""A client's name in the shape CRMs want it."""

from __future__ import annotations

from dataclasses import dataclass

from povtor.domain import Client


@dataclass(frozen=True, slots=True)
class PersonName:
    first: str
    last: str = ""
    middle: str = ""

    @property
    def full(self) -> str:
        return " ".join(p for p in (self.last, self.first, self.middle) if p)


def person_name(client: Client) -> PersonName:
    """Three words are read the Russian way, 'Фамилия Имя Отчество'; anything else stays whole
    in the first name. A client without a name gets one managers can find."""
    words = client.name.split()
    if not words:
        return PersonName(first=f"Клиент {client.external_id}")
    if len(words) == 3:
        return PersonName(first=words[1], last=words[0], middle=words[2])
    return PersonName(first=" ".join(words))
