"""Text normalisation shared by the NLU functions: tokens, lemmas and number words.

Input may be typed (a Telegram message: capitals, punctuation, "ё", digits) or recognised speech
(lower case, no punctuation, numbers as words); both end up as the same tokens.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymorphy3 import MorphAnalyzer

# Words and digit runs ("8баллов" is two; hyphens split "семь-восемь") and the few symbols
# that carry meaning in an answer: "8/10", "100%", "5+".
_TOKEN_RE = re.compile(r"\d+|[^\W\d_]+|[/%+]")


@dataclass(frozen=True, slots=True)
class Token:
    """One word of an answer: normalised text plus where it stands in the original string."""

    text: str  # lower case, "ё" replaced by "е"
    start: int
    end: int

    @property
    def lemmas(self) -> frozenset[str]:
        return lemmas(self.text)

    @property
    def noun_forms(self) -> tuple[tuple[str, frozenset[str]], ...]:
        """(lemma, grammemes) of every noun reading of this word."""
        return noun_forms(self.text)


def fold(text: str) -> str:
    """Lower case with "ё" folded into "е", the way recognised speech and most users spell it."""
    return text.lower().replace("ё", "е")


def tokenize(text: str) -> tuple[Token, ...]:
    return tuple(Token(fold(m.group()), m.start(), m.end()) for m in _TOKEN_RE.finditer(text))


def normalize(text: str) -> str:
    """Lower case, "ё" -> "е", punctuation dropped, single spaces."""
    return " ".join(token.text for token in tokenize(text))


@functools.cache
def morph() -> MorphAnalyzer:
    """The Russian morphology analyser, built once per process (it takes about a second)."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@functools.lru_cache(maxsize=65536)
def lemmas(word: str) -> frozenset[str]:
    """Every dictionary form the word may have (all readings), folded; the word itself included."""
    forms = {word}
    if word.isalpha():
        forms.update(fold(str(parse.normal_form)) for parse in morph().parse(word))
    return frozenset(forms)


_NAMES = frozenset({"Name", "Surn", "Patr", "Abbr"})


@functools.lru_cache(maxsize=65536)
def noun_forms(word: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """(lemma, grammemes) of the noun readings, when the likeliest reading is a common noun."""
    if not word.isalpha():
        return ()
    readings = [
        (fold(str(parse.normal_form)), frozenset(str(g) for g in parse.tag.grammemes))
        for parse in morph().parse(word)
    ]
    nouns = tuple(r for r in readings if "NOUN" in r[1] and not r[1] & _NAMES)
    return nouns if readings and "NOUN" in readings[0][1] else ()


def _forms(nominative: str, oblique: str) -> tuple[str, ...]:
    """Case forms of a cardinal ending in a soft sign: пять, пяти, пятью."""
    return (nominative, oblique + "и", oblique + "ью")


# Cardinal numbers by their case forms (pymorphy3 reads "семью" as "семья" first, so a table of
# forms is more reliable here than lemmas). Values above 10 are listed so that "восемьдесят" is
# recognised as a number, and then as no score.
_CARDINALS: dict[int, tuple[str, ...]] = {
    0: ("ноль", "нуль", "ноля", "нуля", "нолю", "нулю", "нолем", "нулем", "нолик", "нулик"),
    1: ("один", "одна", "одно", "одного", "одной", "одну", "одному", "одним", "одною"),
    2: ("два", "две", "двух", "двум", "двумя"),
    3: ("три", "трех", "трем", "тремя"),
    4: ("четыре", "четырех", "четырем", "четырьмя"),
    5: _forms("пять", "пят"),
    6: _forms("шесть", "шест"),
    7: _forms("семь", "сем"),
    8: (*_forms("восемь", "восьм"), "восемью"),
    9: _forms("девять", "девят"),
    10: _forms("десять", "десят"),
    11: _forms("одиннадцать", "одиннадцат"),
    12: _forms("двенадцать", "двенадцат"),
    13: _forms("тринадцать", "тринадцат"),
    14: _forms("четырнадцать", "четырнадцат"),
    15: _forms("пятнадцать", "пятнадцат"),
    16: _forms("шестнадцать", "шестнадцат"),
    17: _forms("семнадцать", "семнадцат"),
    18: _forms("восемнадцать", "восемнадцат"),
    19: _forms("девятнадцать", "девятнадцат"),
    20: _forms("двадцать", "двадцат"),
    30: _forms("тридцать", "тридцат"),
    40: ("сорок", "сорока"),
    50: ("пятьдесят", "пятидесяти"),
    60: ("шестьдесят", "шестидесяти"),
    70: ("семьдесят", "семидесяти"),
    80: ("восемьдесят", "восьмидесяти"),
    90: ("девяносто", "девяноста"),
    100: ("сто", "ста", "сотня", "сотню", "сотка", "сотку"),
    200: ("двести", "двухсот"),
    1000: ("тысяча", "тысячу", "тысячи", "тысяч"),
}
NUMBER_WORDS: dict[str, int] = {
    form: value for value, forms in _CARDINALS.items() for form in forms
}


def number_value(word: str) -> int | None:
    """The value of a cardinal written in digits or in words (any case form), else None."""
    if word.isdigit():
        return int(word) if len(word) <= 6 else None
    return NUMBER_WORDS.get(word)
