"""Whether an answer asks for a person instead of the robot ("соедините с менеджером").

Said at any question of a call, such a request hands the client to a manager, so a false "yes"
takes a manager's time and cuts the survey short, and a false "no" keeps a client talking to a
robot they refused. Decisions:
- a request is a verb of handing over or of talking, then a person noun: "соедините с
  менеджером", "позовите оператора", "переключите на специалиста", "хочу поговорить с человеком",
  "дайте менеджера"; an imperative may also come last ("оператора позовите");
- "живой человек", "живой оператор", "настоящий человек" ask for a person by themselves ("можно
  живого человека"), and so does refusing the robot: "не хочу с роботом (говорить)";
- a person noun alone, with nothing but politeness and fillers around it, is a request too:
  "оператора!", "менеджера, пожалуйста", "можно менеджера";
- an answer that tells about a person is not a request: past tense ("я уже говорил с
  менеджером", "меня переводили на оператора", "менеджер дал скидку", "живой человек ответил
  быстро"), other words between the
  verb and the noun ("хочу сказать, менеджер молодец"), a noun inside a longer answer ("менеджер
  был грубый", "оператор не дозвонился");
- negated requests are not requests: "не надо менеджера", "не соединяйте с оператором",
  "менеджер не нужен", "нет, человека не надо"; a "нет" before a request answers the question
  and asks all the same ("нет, позовите оператора");
- opt-outs are not looked at here: the caller checks them first ("не звоните больше, соедините с
  менеджером" stops contact, a legal matter).
"""

from __future__ import annotations

from itertools import product

from nlu.normalize import Token, morph, tokenize
from nlu.phrases import FILLERS, NEGATIONS, Match, find, phrases

PERSON = "person"
# Who a client may ask for (pymorphy3 gives "человек" as the lemma of "люди" too).
NOUNS = frozenset(
    {
        "менеджер", "оператор", "человек", "сотрудник", "специалист", "консультант",
        "администратор", "руководитель", "начальник", "девушка",
    }
)  # fmt: skip
_CONNECT = ("соединить", "соединять", "связать", "связывать", "подключить")  # "... с менеджером"
_SWITCH = ("переключить", "переключать", "перевести", "переводить", "перекинуть")  # "на ..."
_CALL = ("позвать", "звать", "дать", "давать", "пригласить", "нужный", "хотеть")  # "... менеджера"
_TALK = (
    "поговорить", "говорить", "разговаривать", "побеседовать", "общаться", "пообщаться",
    "связаться",
)  # fmt: skip
_LIVE = ("живой", "настоящий", "реальный")

REQUEST_PHRASES = phrases(
    PERSON,
    [
        *(f"{verb} с {noun}" for verb, noun in product(_CONNECT + _TALK, sorted(NOUNS))),
        *(f"{verb} на {noun}" for verb, noun in product(_SWITCH, sorted(NOUNS))),
        *(f"{verb} {noun}" for verb, noun in product(_CALL, sorted(NOUNS))),
        *(f"{adjective} {noun}" for adjective, noun in product(_LIVE, sorted(NOUNS))),
        "не хотеть с робот", "не хотеть говорить с робот", "не хотеть разговаривать с робот",
        "не хотеть общаться с робот", "не =буду говорить с робот",
        "не =буду разговаривать с робот",
    ],
)  # fmt: skip

# Words that may stand between the verb and the noun of a request ("соедините меня, пожалуйста,
# с вашим менеджером"), and beside a bare noun ("мне бы менеджера", "можно оператора").
_BETWEEN = FILLERS | {"ваш", "свой", "какой", "любой", "бы", "а", "с", "на", *_LIVE}
_BESIDE = (
    FILLERS | {"бы", "а", "дать", "давать", "позвать", "хотеть", "здравствуйте", "алло", "ваш"}
) - {"ни", "никто", "ничего", "никак", "никогда"}


_NOT = frozenset({"не", "ни"})  # "нет, позовите оператора" refuses the question, not the person


def asks_for_person(text: str) -> bool:
    """True when ``text`` (typed or recognised) asks to talk to a person."""
    tokens = tokenize(text)
    if not tokens:
        return False
    if any(_request(tokens, m) for m in find(tokens, REQUEST_PHRASES, negators=_NOT)):
        return True
    if any(token.text in NEGATIONS for token in tokens):
        return False
    nouns = [t for t in tokens if t.lemmas & NOUNS]
    return bool(nouns) and all(t in nouns or _among(t, _BESIDE) for t in tokens)


def _request(tokens: tuple[Token, ...], match: Match) -> bool:
    """A found phrase is a request: not negated, in its order unless the verb is imperative,
    the verb not in the past, nothing but fillers between its words."""
    if match.negated:
        return False
    first = tokens[match.first]
    if match.phrase.has_negation:
        return True  # "не хочу с роботом": strict gaps already
    head = match.phrase.words[0]
    forward = head in first.lemmas or first.text == head
    verb = first if forward else tokens[match.last]
    if not forward and not _imperative(verb):
        return False
    if _past(verb):
        return False
    if match.last + 1 < len(tokens) and _past(tokens[match.last + 1]):
        return False  # the person is the subject of a story: "живой человек ответил быстро"
    inside = set(range(match.first, match.last + 1)) - set(match.positions)
    return all(_among(tokens[i], _BETWEEN) for i in inside)


def _among(token: Token, words: frozenset[str] | set[str]) -> bool:
    return token.text in words or bool(token.lemmas & words)


def _tags(word: str) -> frozenset[str]:
    parses = morph().parse(word)
    return frozenset(str(g) for g in parses[0].tag.grammemes) if parses else frozenset()


def _imperative(token: Token) -> bool:
    return "impr" in _tags(token.text)


def _past(token: Token) -> bool:
    return "past" in _tags(token.text)
