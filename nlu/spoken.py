"""Values as a Russian voice should say them: numbers, money, dates, times, phones, names in case.

Pure functions (data in, words out), used by call scenario templates and anything else that
speaks. Decisions:

- Numbers, ordinals and money go through ``num2words`` (it declines Russian numerals by case and
  gender); the noun after a number ("рубля", "копеек", "часа") agrees by pymorphy3. A speech
  synthesiser reading digits itself says "12 марта" as "двенадцать марта": wrong, so templates
  never hand it digits.
- Kopecks are said only when there are any ("сто рублей", not "сто рублей ноль копеек").
- A date is said as an ordinal in the genitive ("двенадцатого марта"), the usual way of saying
  when something happened; the year only when it is not the current one (``today``).
- A phone number is read in the groups people dictate it in (+7 912 345-67-89): "плюс семь,
  девятьсот двенадцать, триста сорок пять, шестьдесят семь, восемьдесят девять"; a group that
  starts with zero is read digit by digit up to the first non-zero ("ноль пять").
- A name or a company is declined word by word up to and including its head noun: adjectives
  before it agree, words after it (a genitive complement: "отдел продаж") and anything in quotes
  («Зерно») stay as written, and unknown words (ООО, Latin names) are left alone rather than
  guessed. A person's name (first name, patronymic, surname) is declined in every part, the
  surname in the gender of the first name ("Анне Смирновой").
- The generic word of a company name is lower-cased inside a sentence ("кофейни «Зерно»"):
  only the quoted part is a proper name.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import phonenumbers
from num2words import num2words

from nlu.normalize import morph

CASES = ("nomn", "gent", "datv", "accs", "ablt", "loct")  # pymorphy3 names, as in the templates
_NUM2WORDS_CASE = {"nomn": "n", "gent": "g", "datv": "d", "accs": "a", "ablt": "i", "loct": "p"}
_MONTHS_GENT = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)  # fmt: skip
_QUOTED = re.compile(r"«[^»]*»|\"[^\"]*\"|“[^”]*”|„[^“”]*[“”]")
_WORD = re.compile(r"[А-Яа-яЁё]+(?:-[А-Яа-яЁё]+)*")
_PERSON = frozenset({"Name", "Surn", "Patr"})
_DIGITS = ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")


def _check_case(case: str) -> str:
    if case not in CASES:
        raise ValueError(f"unknown case {case!r}: use one of {', '.join(CASES)}")
    return case


def number_words(number: int, case: str = "nomn", gender: str = "m") -> str:
    """A cardinal number in words: ``number_words(21, "gent", "f")`` -> "двадцати одной"."""
    said_case = _NUM2WORDS_CASE[_check_case(case)]
    words = num2words(int(number), lang="ru", case=said_case, gender=gender)
    return str(words).replace(",", "")


def ordinal_words(number: int, case: str = "nomn", gender: str = "m") -> str:
    """An ordinal in words: ``ordinal_words(12, "gent", "n")`` -> "двенадцатого"."""
    return str(
        num2words(
            int(number),
            lang="ru",
            to="ordinal",
            case=_NUM2WORDS_CASE[_check_case(case)],
            gender=gender,
        )
    )


def agree(noun: str, number: int) -> str:
    """``noun`` in the form that follows ``number``: agree("рубль", 3) -> "рубля"."""
    parse = morph().parse(noun)[0]
    form = parse.make_agree_with_number(abs(int(number)))
    return str(form.word) if form is not None else noun


def count_words(number: int, noun: str, case: str = "nomn") -> str:
    """A number and its noun: count_words(5, "день") -> "пять дней"."""
    parse = morph().parse(noun)[0]
    gender = {"masc": "m", "femn": "f", "neut": "n"}.get(str(parse.tag.gender), "m")
    if case == "nomn":
        return f"{number_words(number, gender=gender)} {agree(noun, number)}"
    form = parse.inflect({_check_case(case), "plur" if number % 10 != 1 else "sing"})
    word = str(form.word) if form is not None else noun
    return f"{number_words(number, case, gender)} {word}"


def money_words(amount: object, currency: str = "RUB") -> str:
    """Roubles (and kopecks when there are any) in words: 1234.5 -> "одна тысяча двести тридцать
    четыре рубля пятьдесят копеек". Accepts numbers and strings ("1 234,50", "99 ₽")."""
    if currency != "RUB":
        raise ValueError(f"only roubles are spoken, not {currency}")
    value = _decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "минус " if value < 0 else ""
    rubles, kopecks = divmod(int(abs(value) * 100), 100)
    said = f"{sign}{number_words(rubles)} {agree('рубль', rubles)}"
    if kopecks:
        said += f" {number_words(kopecks, gender='f')} {agree('копейка', kopecks)}"
    return said


def _decimal(amount: object) -> Decimal:
    if isinstance(amount, bool):
        raise ValueError(f"not an amount: {amount!r}")
    if isinstance(amount, Decimal | int):
        return Decimal(amount)
    if isinstance(amount, float):
        return Decimal(repr(amount))
    text = re.sub(r"[\s\u00a0₽]|руб\.?|р\.", "", str(amount)).replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not an amount: {amount!r}") from None


def date_words(day: dt.date, *, today: dt.date | None = None, case: str = "gent") -> str:
    """ "двенадцатого марта" (the year is said when it is not ``today``'s year)."""
    if isinstance(day, dt.datetime):
        day = day.date()
    said = f"{ordinal_words(day.day, case, 'n')} {_MONTHS_GENT[day.month - 1]}"
    if today is None or today.year != day.year:
        said += f" {ordinal_words(day.year, 'gent')} года"
    return said


def time_words(moment: dt.time | dt.datetime | str) -> str:
    """ "четырнадцать тридцать", "девять ноль пять", "десять часов"."""
    if isinstance(moment, str):
        match = re.fullmatch(r"(\d{1,2})[:.](\d{2})", moment.strip())
        if match is None:
            raise ValueError(f"not a time of day: {moment!r}")
        moment = dt.time(int(match.group(1)), int(match.group(2)))
    hour, minute = moment.hour, moment.minute
    if minute == 0:
        return count_words(hour, "час") if hour else "ноль часов"
    minutes = number_words(minute, gender="f")
    if minute < 10:
        minutes = f"ноль {minutes}"
    return f"{number_words(hour)} {minutes}"


def _group_words(group: str) -> str:
    zeros = len(group) - len(group.lstrip("0"))
    said = [_DIGITS[0]] * zeros
    if group.lstrip("0"):
        said.append(number_words(int(group)))
    return " ".join(said)


def phone_words(phone: str, region: str = "RU") -> str:
    """A phone number as it is dictated: groups of 3-3-2-2 after the country code."""
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException as err:
        raise ValueError(f"not a phone number: {phone!r}") from err
    national = str(parsed.national_number)
    groups, sizes = [], (3, 3, 2, 2) if len(national) == 10 else ()
    for size in sizes:
        groups.append(national[:size])
        national = national[size:]
    groups += [national[i : i + 2] for i in range(0, len(national), 2)] if national else []
    country = f"плюс {number_words(parsed.country_code or 7)}"
    return ", ".join([country, *(_group_words(g) for g in groups)])


# --- names in case ---


def inflect(phrase: str, case: str) -> str:
    """A name or company (in the nominative) in ``case``: inflect("Кофейня «Зерно»", "gent")
    -> "кофейни «Зерно»"; inflect("Иван Петров", "datv") -> "Ивану Петрову"."""
    _check_case(case)
    if case == "nomn" or not phrase.strip():
        return phrase
    quoted = [(m.start(), m.end()) for m in _QUOTED.finditer(phrase)]
    has_name = bool(quoted)
    out: list[str] = []
    at = 0
    head_done = False
    person_gender: str | None = None
    words = 0
    for match in _WORD.finditer(phrase):
        if any(a <= match.start() < b for a, b in quoted):
            continue
        out.append(phrase[at : match.start()])
        at = match.end()
        word = match.group()
        words += 1
        if head_done:
            out.append(word)
            continue
        said, role, gender = _inflect_word(word, case, person_gender)
        if role == "person":
            person_gender = person_gender or gender
        elif role == "noun":
            head_done = True
            if has_name and word[:1].isupper() and not word.isupper():
                said = said[:1].lower() + said[1:]
        elif role == "other" and words == 1:
            head_done = True  # an unknown first word (ООО, a brand): leave the whole phrase
        out.append(said)
    out.append(phrase[at:])
    return "".join(out)


def _inflect_word(word: str, case: str, gender: str | None) -> tuple[str, str, str | None]:
    """(the word in ``case``, its role: person/adj/noun/other, its gender)."""
    parses = [p for p in morph().parse(word) if "nomn" in p.tag and p.is_known]
    person = [p for p in parses if _PERSON & set(str(g) for g in p.tag.grammemes)]
    if gender is not None:
        person = [p for p in person if p.tag.gender == gender] or person
    if person and (word[:1].isupper() or gender is not None):
        parse = person[0]
        role = "person"
    elif parses and parses[0].tag.POS in ("ADJF", "PRTF"):
        parse, role = parses[0], "adj"
    elif parses and parses[0].tag.POS == "NOUN":
        parse, role = parses[0], "noun"
    else:
        return word, "other", None
    wanted = {case, str(parse.tag.number)} if parse.tag.number else {case}
    if role == "adj" and parse.tag.gender:
        wanted.add(str(parse.tag.gender))
    form = parse.inflect(wanted) or parse.inflect({case})
    if form is None:
        return word, "other", None
    return _same_shape(word, str(form.word)), role, str(parse.tag.gender or "") or None


def _same_shape(original: str, word: str) -> str:
    """The inflected word with the capitals of the original (Петров -> Петрову, ИП stays)."""
    if original.isupper() and len(original) > 1:
        return word.upper()
    if original[:1].isupper():
        return "-".join(part[:1].upper() + part[1:] for part in word.split("-"))
    return word


@functools.lru_cache(maxsize=4096)
def inflect_cached(phrase: str, case: str) -> str:
    return inflect(phrase, case)
