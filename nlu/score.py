"""Reading a 0-10 NPS score out of a typed or recognised answer.

Conservative by design: a wrong score is worse than none (the robot can ask again, a manager can
listen to the recording). So the answer gives a score only when exactly one value in 0..10 is
stated. Decisions:
- "восемь", "8", "на восьмерку", "твердая восьмерка", "8/10", "восемь из десяти", "восемь баллов",
  "ну не знаю наверное восемь" give 8 (hesitation around a single number still states it);
- "восемь восемь" (a repeat) gives 8; "не десять но девять" gives 9 (a negated number is dropped);
- two different numbers ("семь или восемь", "от семи до восьми", "семь-восемь", "8,5") give None;
- numbers outside 0..10 ("восемьдесят", "на все сто", "11") give None, and so does every other
  scale: "пять из пяти", "4/5", "пять звезд", the school grade nouns ("пятерка", "на пять с
  плюсом", "четверка", "кол": 1..5 on the school scale means something else than on 0..10);
- counts are not scores: "десять лет у вас покупаю", "сто процентов", "опоздал на два часа";
- "с минусом", "с половиной", "больше восьми", "не ниже семи", "минус пять" give None; only "десять
  с плюсом" gives 10;
- refusals and call-back requests give None even with a number ("перезвоните в пять", "не буду
  отвечать", "не звоните больше").
"""

from __future__ import annotations

from collections.abc import Sequence

from nlu.intent import OPTOUT_PHRASES
from nlu.normalize import Token, number_value, tokenize
from nlu.phrases import find, phrases

# Number nouns that cannot be a school grade: "твердая восьмерка", "на десяточку".
_NUMBER_NOUNS: dict[str, int] = {
    "нолик": 0,
    "нулевка": 0,
    "шестерка": 6,
    "шестерочка": 6,
    "семерка": 7,
    "семерочка": 7,
    "восьмерка": 8,
    "восьмерочка": 8,
    "девятка": 9,
    "девяточка": 9,
    "десятка": 10,
    "десяточка": 10,
}
# Words that put the answer on another scale or make it fuzzy: no score at all.
_OTHER_SCALE = frozenset(
    {
        "единица", "единичка", "кол", "двойка", "двоечка", "тройка", "троечка", "четверка",
        "четверочка", "пятерка", "пятерочка", "звезда", "звездочка", "полтора", "половина",
        "половинка",
    }
)  # fmt: skip
# Before a number these make it a bound or a range, not a value.
_BOUNDS = frozenset(
    {
        "от", "до", "между", "больше", "меньше", "выше", "ниже", "более", "менее", "максимум",
        "минимум", "свыше", "почти", "после", "или", "либо",
    }
)  # fmt: skip
# Nouns that may follow a score without making it a count.
_SCORE_NOUNS = frozenset({"балл", "бал", "очко", "оценка", "пункт"})
_REFUSALS = phrases(
    "refusal",
    [
        "перезвонить", "позвонить", "набрать", "не буду", "не стану", "не хочу", "не хотеть",
        "не мочь говорить", "некогда", "неудобно", "отстать", "отвязаться", "занят", "занята",
        "за рулем", "не ваш дело", "не скажу", "не отвечать", "отказываться", "без комментарий",
    ],
)  # fmt: skip


def _value(token: Token) -> int | None:
    value = number_value(token.text)
    if value is not None:
        return value
    for lemma in token.lemmas:
        if lemma in _NUMBER_NOUNS:
            return _NUMBER_NOUNS[lemma]
    return None


def _counts_something(value: int, following: Token) -> bool:
    """ "десять лет", "два часа", "одна проблема": the number counts the noun after it."""
    if _value(following) is not None or following.text.isdigit():
        return False
    for lemma, grammemes in following.noun_forms:
        if lemma in _SCORE_NOUNS:
            return False
        if "gent" in grammemes and ("plur" in grammemes) == (value == 0 or value >= 5):
            return True
        if value == 1 and grammemes & {"nomn", "accs"}:
            return True
    return False


def _scores(tokens: Sequence[Token]) -> list[int] | None:
    """Every stated value; None when the answer is fuzzy or on another scale."""
    values: list[int] = []
    for i, token in enumerate(tokens):
        if token.lemmas & _OTHER_SCALE:
            return None
        value = _value(token)
        if value is None:
            continue
        before = tokens[i - 1].text if i >= 1 else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if before in {"из", "/"}:  # the scale: "девять из десяти", "8/10"
            if value != 10:
                return None
            continue
        if before in _BOUNDS or before == "минус":
            return None
        if before in {"не", "ни", "номер"}:  # "не десять, но девять"; "заказ номер пять"
            continue
        if after is not None:
            rest = [t.text for t in tokens[i + 1 : i + 3]]
            if rest in (["с", "плюсом"], ["+"], ["плюс"]):
                if value != 10:
                    return None
            elif rest[:1] == ["с"] or after.text in {"или", "либо"}:  # "семь с чем-то"
                return None
            elif after.text == "%" or _counts_something(value, after):
                continue
        values.append(value)
    return values


def extract_score(text: str) -> int | None:
    """The 0..10 score stated in the answer, or None when there is none or it is not clear."""
    tokens = tokenize(text)
    if not tokens:
        return None
    if any(not m.negated for m in find(tokens, OPTOUT_PHRASES + _REFUSALS)):
        return None
    values = _scores(tokens)
    if not values or len(set(values)) != 1:
        return None
    value = values[0]
    return value if 0 <= value <= 10 else None
