"""Finding lexicon phrases (lemma sequences) in a tokenised answer, with cheap negation handling.

A phrase is written as space-separated words; each word matches a token whose text or any of whose
lemmas equals it ("курьер опоздать" matches "курьер опять опоздал"). Small gaps between the words
are allowed, but never a negation ("курьер не опоздал" does not match). Phrases that contain "не"
themselves ("не дозвониться") allow only filler words in their gaps ("не мог дозвониться").
A word written "=form" matches that exact form only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nlu.normalize import Token

NEGATIONS = frozenset({"не", "ни", "нет", "без"})
_ABSENCE = frozenset({"нет", "без"})
# Words that may stand between "не" and what it negates: "не очень дорого", "не так уж долго".
_INTENSIFIERS = frozenset({"очень", "слишком", "так", "такой", "особо", "сильно", "совсем", "уж"})
# Words allowed in the gaps of a phrase that contains a negation: pronouns, particles, modals.
FILLERS = frozenset(
    {
        "мне", "меня", "нам", "нас", "вы", "вам", "вас", "я", "мы", "он", "она", "они", "их",
        "больше", "более", "пожалуйста", "уже", "вообще", "никогда", "сюда", "так", "же", "ж",
        "то", "ну", "просто", "совсем", "никак", "мой", "моя", "мою", "мои", "наш", "этот", "это",
        "на", "по", "мочь", "смочь", "можно", "получаться", "получиться", "удаваться", "удаться",
        "надо", "нужно", "было", "был", "была", "были", "ни", "разу", "раз", "сейчас", "даже",
        "очень", "нормально", "толком", "быть", "до", "никто", "ничего",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Phrase:
    words: tuple[str, ...]
    label: str
    weight: int = 1
    absence: bool = False  # "нет/без X" is still X: "нет программы лояльности"

    @property
    def has_negation(self) -> bool:
        return any(word in NEGATIONS for word in self.words)


@dataclass(frozen=True, slots=True)
class Match:
    phrase: Phrase
    positions: tuple[int, ...]  # token indexes, ascending
    negated: bool  # a negation stands right before it ("не дорого")

    @property
    def first(self) -> int:
        return self.positions[0]

    @property
    def last(self) -> int:
        return self.positions[-1]

    def surface(self, text: str, tokens: Sequence[Token]) -> str:
        """The matched words as they appear in the original text."""
        return text[tokens[self.first].start : tokens[self.last].end]


def phrases(
    label: str, words: Iterable[str], weight: int = 1, absence: bool = False
) -> tuple[Phrase, ...]:
    return tuple(Phrase(tuple(item.split()), label, weight, absence) for item in words)


def _is(token: Token, word: str) -> bool:
    if word.startswith("="):  # this exact form only: "не =звоните" is not "не звонили"
        return token.text == word[1:]
    return token.text == word or (word not in NEGATIONS and word in token.lemmas)


def _is_filler(token: Token) -> bool:
    return token.text in FILLERS or bool(token.lemmas & FILLERS)


def _match_from(
    tokens: Sequence[Token],
    start: int,
    words: Sequence[str],
    max_gap: int,
    strict_gaps: bool,
) -> tuple[int, ...] | None:
    positions = [start]
    for word in words[1:]:
        found = None
        for j in range(positions[-1] + 1, min(len(tokens), positions[-1] + 2 + max_gap)):
            if _is(tokens[j], word):
                found = j
                break
            gap = tokens[j]
            if gap.text in NEGATIONS or (strict_gaps and not _is_filler(gap)):
                break
        if found is None:
            return None
        positions.append(found)
    return tuple(positions)


def _negated_before(tokens: Sequence[Token], first: int, negators: frozenset[str]) -> bool:
    if first >= 1 and tokens[first - 1].text in negators:
        return True
    return (
        first >= 2
        and tokens[first - 1].text in _INTENSIFIERS
        and tokens[first - 2].text in negators
    )


def _negated_after(tokens: Sequence[Token], last: int) -> bool:
    """ "задержек не было", "проблем с доставкой нет"."""
    rest = [token.text for token in tokens[last + 1 : last + 3]]
    return rest[:1] == ["нет"] or rest == ["не", "было"] or rest == ["не", "бывает"]


def find(
    tokens: Sequence[Token],
    lexicon: Iterable[Phrase],
    max_gap: int = 2,
    negators: frozenset[str] = NEGATIONS,
) -> list[Match]:
    """Every occurrence of every phrase; most two-word phrases match in either order.

    `negators` are the words that negate a phrase standing right after them.
    """
    found: list[Match] = []
    for phrase in lexicon:
        strict = phrase.has_negation
        orders = [phrase.words]
        if len(phrase.words) == 2 and (not strict or phrase.words[0] == "нет"):
            orders.append(phrase.words[::-1])  # "курьер опоздал" / "опоздал курьер", "чата нет"
        seen: set[tuple[int, ...]] = set()
        for words in orders:
            for start, token in enumerate(tokens):
                if not _is(token, words[0]):
                    continue
                # Filler-only gaps may be a word longer: "не могу до вас дозвониться".
                gap = max_gap + 1 if strict else max_gap
                positions = _match_from(tokens, start, words, gap, strict)
                if positions is None or positions in seen:
                    continue
                seen.add(positions)
                before = negators - _ABSENCE if phrase.absence else negators
                negated = not strict and (
                    _negated_before(tokens, positions[0], before)
                    or _negated_after(tokens, positions[-1])
                )
                found.append(Match(phrase, positions, negated))
    return found


def longest(matches: Iterable[Match]) -> list[Match]:
    """Drop matches that share a token with a longer (or earlier equally long) one."""
    ordered = sorted(matches, key=lambda m: (-len(m.positions), m.first))
    kept: list[Match] = []
    used: set[int] = set()
    for match in ordered:
        if used.isdisjoint(match.positions):
            kept.append(match)
            used.update(match.positions)
    return sorted(kept, key=lambda m: m.first)
