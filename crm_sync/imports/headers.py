"""Recognising columns: Russian and English headers of 1C, Excel, amoCRM and Bitrix24 exports."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from povtor.errors import InvalidInput


class Kind(StrEnum):
    CLIENTS = "clients"
    ORDERS = "orders"


IGNORE = "-"  # `--map "Колонка=-"` drops a column


def _a(spellings: str) -> tuple[str, ...]:
    return tuple(spellings.split("|"))


# field -> header spellings, compared after normalize() (lower case, ё -> е, punctuation -> space).
CLIENT_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": _a(
        "код клиента|client id|код|id|id клиента|ид клиента|external id|внешний id|"
        "идентификатор|код контрагента|id контакта|id компании|customer id|номер клиента|"
        "ид"
    ),
    "name": _a(
        "фио|name|клиент|контрагент|наименование|полное имя|имя клиента|контакт|full name|"
        "customer|название|наименование контрагента|название компании|покупатель|"
        "контактное лицо"
    ),
    "first_name": _a("имя|first name"),
    "last_name": _a("фамилия|last name|surname"),
    "middle_name": _a("отчество|middle name"),
    "phone": _a(
        "телефон|phone|телефоны|мобильный телефон|рабочий телефон|домашний телефон|"
        "мобильный|моб телефон|тел|phone number|mobile|контактный телефон|другой телефон|"
        "телефон для рассылок|рабочий прямой телефон|телефон контакта|телефон компании"
    ),
    "email": _a(
        "e mail|email|эл почта|электронная почта|почта|рабочий e mail|личный e mail|"
        "адрес электронной почты|e mail для рассылок"
    ),
    "timezone": _a("часовой пояс|timezone|time zone|tz"),
    "city": _a("город|city|населенный пункт|регион"),
    "manager": _a(
        "ответственный|менеджер|manager|responsible|ответственный менеджер|"
        "основной менеджер|основной менеджер покупателя"
    ),
    "preferred_channel": _a("канал|preferred channel|предпочтительный канал"),
    # consent to advertising (reorder offers, win-back) by call and message
    "ad_consent": _a(
        "согласие|consent|согласие на рассылку|согласие на рекламу|согласие на рассылки|"
        "согласие на рекламные рассылки|согласие на получение рекламы|согласие на звонки|"
        "согласие на рекламные звонки|marketing consent|advertising consent|ad consent|"
        "подписка|подписка на рассылку|подписан на рассылку|рассылка|opt in|согласие на смс"
    ),
    "consent_date": _a(
        "дата согласия|consent date|consent at|дата подписки|дата получения согласия"
    ),
    "consent_source": _a(
        "источник согласия|consent source|способ получения согласия|откуда согласие"
    ),
}

ORDER_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": _a(
        "номер заказа|order id|order|номер|номер документа|id заказа|заказ|id сделки|"
        "номер сделки|deal id|id|ид заказа|external id"
    ),
    "client_external_id": _a(
        "код клиента|client id|client|id клиента|ид клиента|код контрагента|id контакта|"
        "основной контакт id|customer id|клиент id|client external id"
    ),
    "placed_at": _a(
        "дата|date|дата заказа|order date|дата создания|дата документа|создано|"
        "дата сделки|placed at|дата продажи"
    ),
    "amount": _a(
        "сумма|amount|сумма заказа|итого|бюджет|сумма документа|total|сумма сделки|"
        "стоимость|сумма с ндс|сумма руб"
    ),
    "delivered_at": _a("дата доставки|delivered at|дата отгрузки|дата исполнения|доставлен"),
    "currency": _a("валюта|currency"),
    "category": _a("категория|category|группа товаров|вид номенклатуры"),
    "item": _a("товар|товары|номенклатура|item|product|продукт"),
    "quantity": _a("количество|кол во|quantity|qty"),
}

REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.CLIENTS: ("external_id",),
    Kind.ORDERS: ("external_id", "client_external_id", "placed_at", "amount"),
}

MULTI = frozenset({"phone"})  # fields that gather every matching column

_PUNCT = re.compile(r"[^\w]+")


def normalize(header: str) -> str:
    folded = header.replace("\ufeff", "").casefold().replace("ё", "е").replace("_", " ")
    return " ".join(_PUNCT.sub(" ", folded).split())


def fields_for(kind: Kind) -> Mapping[str, tuple[str, ...]]:
    return CLIENT_FIELDS if kind is Kind.CLIENTS else ORDER_FIELDS


def _alias_index(kind: Kind) -> dict[str, str]:
    index: dict[str, str] = {}
    for name, spellings in fields_for(kind).items():
        index[normalize(name)] = name
        for spelling in spellings:
            index.setdefault(normalize(spelling), name)
    return index


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which column index feeds which field (phones may come from several columns)."""

    kind: Kind
    headers: tuple[str, ...]
    single: Mapping[str, int]
    multi: Mapping[str, tuple[int, ...]]
    duplicates: tuple[str, ...] = ()  # one line per field named by more than one column

    @property
    def width(self) -> int:
        """Columns up to the last named one: a row may leave unnamed trailing columns out."""
        return _width(self.headers)  # asked once per row

    @property
    def used(self) -> frozenset[int]:
        return frozenset(self.single.values()) | {i for idx in self.multi.values() for i in idx}

    def has(self, name: str) -> bool:
        return name in self.single or name in self.multi

    def described(self) -> str:
        parts = [f"{self.headers[i]!r}->{f}" for f, i in self.single.items()]
        parts += [f"{self.headers[i]!r}->{f}" for f, idx in self.multi.items() for i in idx]
        return ", ".join(parts)


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``["Колонка=field", ...]`` -> {normalized column: field}."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        column, sep, name = pair.rpartition("=")
        if not sep or not column.strip() or not name.strip():
            raise InvalidInput(f"--map {pair!r}: expected COLUMN=field")
        overrides[normalize(column)] = name.strip()
    return overrides


def recognised_count(kind: Kind, headers: Sequence[object]) -> int:
    index = _alias_index(kind)
    return sum(1 for h in headers if h is not None and normalize(str(h)) in index)


def map_columns(kind: Kind, headers: Sequence[str], overrides: Mapping[str, str]) -> ColumnMap:
    """Match headers to fields; ``overrides`` (from --map) win. Raises InvalidInput if unusable."""
    index = _alias_index(kind)
    known = set(fields_for(kind))
    normalized = [normalize(h) for h in headers]
    missing_cols = [c for c in overrides if c not in normalized]
    if missing_cols:
        raise InvalidInput(
            f"--map names columns that are not in the file: {', '.join(missing_cols)}; "
            f"columns are: {', '.join(headers)}"
        )
    for wanted in overrides.values():
        if wanted != IGNORE and wanted not in known:
            raise InvalidInput(
                f"--map: unknown field {wanted!r} for {kind.value}; "
                f"fields are: {', '.join(sorted(known))} (or '-' to skip a column)"
            )
    single: dict[str, int] = {}
    multi: dict[str, list[int]] = {}
    ignored: dict[str, list[int]] = {}
    overridden = set(overrides.values())
    for i, norm in enumerate(normalized):
        name: str | None = overrides.get(norm) or index.get(norm)
        if name is None or name == IGNORE:
            continue
        if norm not in overrides and name in overridden:
            continue  # an explicit --map for this field beats a guessed column
        if name in MULTI:
            multi.setdefault(name, []).append(i)
        elif name in single:  # the first matching column wins; the others are reported
            ignored.setdefault(name, []).append(i)
        else:
            single[name] = i
    duplicates = tuple(
        f"columns {', '.join(repr(headers[i]) for i in [single[name], *later])} all mean "
        f"{name}: {headers[single[name]]!r} (column {single[name] + 1}) is used, the others "
        f"are ignored (choose with --map COLUMN={name} or skip one with --map COLUMN=-)"
        for name, later in ignored.items()
    )
    required = REQUIRED[kind]
    if kind is Kind.CLIENTS and "external_id" not in single and "phone" in multi:
        required = ()  # no client code: clients are known by their first phone
    missing = [f for f in required if f not in single and f not in multi]
    if missing:
        raise InvalidInput(
            f"no column for {', '.join(missing)} in the {kind.value} file; "
            f"columns are: {', '.join(h or '(empty)' for h in headers)}. "
            "Name them as in the docs or use --map COLUMN=field"
        )
    return ColumnMap(
        kind, tuple(headers), single, {k: tuple(v) for k, v in multi.items()}, duplicates
    )


@lru_cache(maxsize=16)
@lru_cache(maxsize=64)  # asked once per row, the same header every time
def _width(headers: tuple[str, ...]) -> int:
    named = [i for i, h in enumerate(headers) if h.strip()]
    return named[-1] + 1 if named else 0
