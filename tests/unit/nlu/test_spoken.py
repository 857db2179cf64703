"""Values said in Russian: numbers, money, dates, times, phones, names and companies in case."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from nlu.spoken import (
    count_words,
    date_words,
    inflect,
    money_words,
    number_words,
    phone_words,
    time_words,
)

TODAY = dt.date(2026, 12, 7)


@pytest.mark.parametrize(
    ("phrase", "case", "said"),
    [
        ("Кофейня «Зерно»", "gent", "кофейни «Зерно»"),
        ("кофейня «Зерно»", "gent", "кофейни «Зерно»"),
        ("Кофейня «Зерно»", "nomn", "Кофейня «Зерно»"),
        ("Салон красоты «Лиса»", "datv", "салону красоты «Лиса»"),
        ("Сеть магазинов «Дом»", "ablt", "сетью магазинов «Дом»"),
        ("Зелёная аптека", "gent", "Зелёной аптеки"),
        ("Новая пекарня", "loct", "Новой пекарне"),
        ("ООО «Ромашка»", "gent", "ООО «Ромашка»"),
        ("Магазин Coffee Like", "gent", "Магазина Coffee Like"),
        ("Иван Петров", "datv", "Ивану Петрову"),
        ("Анна Смирнова", "datv", "Анне Смирновой"),
        ("Анна Сергеевна Смирнова", "gent", "Анны Сергеевны Смирновой"),
        ("Игорь Ковалёв", "ablt", "Игорем Ковалёвым"),
        ("Екатерина Белых", "datv", "Екатерине Белых"),
        ("Мария", "accs", "Марию"),
        ("Пётр", "datv", "Петру"),
    ],
)
def test_names_and_companies_are_declined_up_to_their_head_noun(
    phrase: str, case: str, said: str
) -> None:
    assert inflect(phrase, case) == said


def test_an_unknown_case_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown case"):
        inflect("Кофейня", "genitive")


@pytest.mark.parametrize(
    ("amount", "said"),
    [
        (1, "один рубль"),
        (2, "два рубля"),
        (5, "пять рублей"),
        (21, "двадцать один рубль"),
        (111, "сто одиннадцать рублей"),
        (1234.5, "одна тысяча двести тридцать четыре рубля пятьдесят копеек"),
        ("1 001,01", "одна тысяча один рубль одна копейка"),
        (Decimal("99.02"), "девяносто девять рублей две копейки"),
        ("1500 ₽", "одна тысяча пятьсот рублей"),
        (-3, "минус три рубля"),
    ],
)
def test_money_is_said_in_roubles_and_kopecks_in_the_right_form(amount: object, said: str) -> None:
    assert money_words(amount) == said


@pytest.mark.parametrize("amount", ["много", True, ""])
def test_what_is_not_an_amount_is_refused(amount: object) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        money_words(amount)


@pytest.mark.parametrize(
    ("day", "said"),
    [
        (dt.date(2026, 3, 12), "двенадцатого марта"),
        (dt.date(2026, 12, 1), "первого декабря"),
        (dt.date(2025, 1, 23), "двадцать третьего января две тысячи двадцать пятого года"),
        (dt.datetime(2026, 5, 9, 14, 0, tzinfo=dt.UTC), "девятого мая"),
    ],
)
def test_dates_are_said_as_genitive_ordinals_with_the_year_only_when_not_this_year(
    day: dt.date, said: str
) -> None:
    assert date_words(day, today=TODAY) == said


@pytest.mark.parametrize(
    ("moment", "said"),
    [
        ("14:30", "четырнадцать тридцать"),
        ("9:05", "девять ноль пять"),
        (dt.time(10, 0), "десять часов"),
        (dt.time(21, 0), "двадцать один час"),
        (dt.time(22, 0), "двадцать два часа"),
        ("18.45", "восемнадцать сорок пять"),
    ],
)
def test_times_are_said_as_people_say_them(moment: str | dt.time, said: str) -> None:
    assert time_words(moment) == said


@pytest.mark.parametrize(
    ("phone", "said"),
    [
        (
            "+79123456789",
            "плюс семь, девятьсот двенадцать, триста сорок пять, шестьдесят семь, "
            "восемьдесят девять",
        ),
        (
            "8 (800) 555-35-35",
            "плюс семь, восемьсот, пятьсот пятьдесят пять, тридцать пять, тридцать пять",
        ),
        (
            "+7 495 005-01-00",
            "плюс семь, четыреста девяносто пять, ноль ноль пять, ноль один, ноль ноль",
        ),
    ],
)
def test_phone_numbers_are_read_in_dictation_groups(phone: str, said: str) -> None:
    assert phone_words(phone) == said


@pytest.mark.parametrize(
    ("number", "case", "gender", "said"),
    [
        (0, "nomn", "m", "ноль"),
        (21, "gent", "f", "двадцати одной"),
        (1000000, "nomn", "m", "один миллион"),
        (2, "nomn", "f", "две"),
    ],
)
def test_numbers_agree_in_case_and_gender(number: int, case: str, gender: str, said: str) -> None:
    assert number_words(number, case, gender) == said


@pytest.mark.parametrize(
    ("number", "noun", "case", "said"),
    [
        (1, "день", "nomn", "один день"),
        (3, "день", "nomn", "три дня"),
        (40, "день", "nomn", "сорок дней"),
        (3, "день", "gent", "трёх дней"),
        (2, "неделя", "nomn", "две недели"),
    ],
)
def test_counted_nouns_agree_with_their_number(
    number: int, noun: str, case: str, said: str
) -> None:
    assert count_words(number, noun, case) == said
