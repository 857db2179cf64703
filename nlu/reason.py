"""Reason category of a free-text comment ("what should we improve?", "why did you stop buying?").

Complaint-centred: the categories are what a repeat-sales team tracks as reasons for unhappiness,
so praise of an aspect ("быстрая доставка", "цены нормальные") or a negated complaint ("не
дорого", "курьер не опоздал") is no evidence. Each lexicon entry is a lemma or a lemma phrase;
a bare aspect noun ("цена", "курьер") weighs 1, a complaint word ("дорого", "хамить") 2, a phrase
("курьер опоздать", "не дозвониться") 3. The category with the highest total wins; a tie goes to
the category mentioned first (people start with what matters most to them), then to `_PRIORITY`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nlu.normalize import Token, tokenize
from nlu.phrases import NEGATIONS, Match, Phrase, find, longest, phrases
from povtor.domain import NpsGroup, nps_group
from povtor.domain import ReasonCategory as C

_ASPECT, _WORD, _PHRASE = 1, 2, 3


# Reasons that are something missing: "нет чата", "без индивидуального подхода" are complaints.
_ABSENCE_REASONS = frozenset({C.NO_PERSONAL_APPROACH, C.NO_CONVENIENT_CHANNEL})


def _entries(category: C, aspects: Sequence[str], complaints: Sequence[str]) -> list[Phrase]:
    absence = category in _ABSENCE_REASONS
    entries = list(phrases(category, aspects, _ASPECT, absence))
    for item in complaints:
        content = [word for word in item.split() if word not in NEGATIONS]
        weight = _WORD if len(content) == 1 else _PHRASE
        entries += phrases(category, [item], weight, absence)
    return entries


# fmt: off
_LEXICON: tuple[Phrase, ...] = tuple(
    _entries(C.SERVICE_QUALITY,
        ["обслуживание", "сервис", "персонал", "сотрудник", "отношение"],
        ["грубый", "грубо", "грубить", "нагрубить", "грубость", "хамить", "нахамить", "хамство",
         "хам", "хамло", "хамский", "хамоватый", "невежливый", "невежливо", "не вежливый",
         "неприветливый", "равнодушный", "равнодушие", "безразличный", "безразличие",
         "наплевательский", "наплевать", "накричать", "нахамить", "обмануть", "обман",
         "неуважение", "не уважать", "игнорировать", "проигнорировать", "бросить трубка",
         "не извиниться", "никто не помочь", "не решить проблема", "отказать в возврат",
         "не принять возврат", "не вернуть деньги", "плохой обслуживание", "плохой сервис",
         "ужасный сервис", "ужасный обслуживание", "отвратительный сервис",
         "качество обслуживание", "уровень сервис", "отношение к клиент", "хамить менеджер"])
    + _entries(C.NO_PERSONAL_APPROACH,
        ["подход", "бонус", "лояльность"],
        ["индивидуальный подход", "персональный подход", "нет подход", "шаблонный", "шаблон",
         "конвейер", "безликий", "скидка для постоянный", "скидка постоянный",
         "постоянный клиент", "постоянный покупатель", "не ценить", "не помнить",
         "не учитывать", "забыть про", "не поздравить", "программа лояльность",
         "бонусный программа", "персональный предложение", "индивидуальный предложение",
         "особый условие", "мало внимание", "нет внимание", "невнимательный", "навязывать",
         "спам", "нет скидка для постоянный", "как к чужой", "как с чужой",
         "никакой индивидуальность"])
    + _entries(C.MANAGER_COMPETENCE,
        ["менеджер", "консультант", "продавец", "специалист"],
        ["не разбираться", "некомпетентный", "некомпетентность", "некомпетентно",
         "непрофессиональный", "непрофессионально", "непрофессионализм", "не профессионал",
         "дилетант", "неграмотный", "безграмотный", "новичок", "стажер", "напутать",
         "перепутать", "путаться", "ошибиться", "не знать продукт", "не знать товар",
         "не знать ассортимент", "не знать ответ", "не мочь ответить", "не ответить на вопрос",
         "не мочь объяснить", "не объяснить", "не мочь подсказать", "не подсказать",
         "не мочь проконсультировать", "плохо проконсультировать", "неправильно посоветовать",
         "посоветовать не то", "ввести в заблуждение", "не в курс", "не в тема",
         "ошибка в счет", "ошибка в заказ", "не мочь помочь", "менеджер не разбираться",
         "менеджер не знать", "менеджер путаться", "менеджер ошибиться"])
    + _entries(C.NO_CONVENIENT_CHANNEL,
        ["мессенджер", "чат", "ватсап", "вотсап", "whatsapp", "телеграм", "телеграмм",
         "telegram", "личный кабинет", "приложение", "горячий линия", "обратный связь"],
        ["не дозвониться", "невозможно дозвониться", "нельзя дозвониться",
         "трудно дозвониться", "сложно дозвониться", "дозвониться невозможно",
         "дозвониться нереально", "не брать трубка", "трубка не брать",
         "не отвечать на звонок", "не отвечать на письмо", "не ответить на письмо",
         "не отвечать на сообщение", "нет чат", "нет онлайн", "нет мессенджер", "нет телеграм",
         "нет телеграмм", "нет ватсап", "нет вотсап", "нет приложение", "нет сайт",
         "нет обратный связь", "неудобный сайт", "неудобно заказывать", "неудобно связаться",
         "трудно связаться", "сложно связаться", "не связаться", "невозможно связаться",
         "нельзя написать", "некуда написать", "только по телефон", "только звонить",
         "только звонок", "ждать на линия", "висеть на линия", "линия занятой",
         "постоянно занято", "всегда занято"])
    + _entries(C.SLOW_PROCESSING,
        ["оформление", "обработка", "задержка"],
        ["долго", "долгий", "медленно", "медленный", "ждать", "ожидание", "прождать",
         "затянуть", "затягивать", "тянуть", "волокита", "бюрократия", "тормозить", "медлить",
         "промедление", "не торопиться", "до сих пор", "долго ждать", "долго обрабатывать",
         "долго оформлять", "долго отвечать", "долго думать", "долго согласовывать",
         "долго собирать", "ждать ответ", "не перезвонить", "обещать перезвонить",
         "не выставить счет", "долго выставлять", "обрабатывать неделя", "обрабатывать месяц",
         "оформлять неделя", "оформлять месяц", "собирать неделя", "неделя ждать",
         "обрабатывать день", "оформлять день", "собирать день"])
    + _entries(C.PRODUCT_QUALITY,
        ["качество", "товар", "продукт", "продукция"],
        ["сломаться", "сломать", "сломанный", "поломка", "брак", "бракованный",
         "некачественный", "дефект", "дефектный", "трещина", "треснуть", "порваться", "рваный",
         "развалиться", "отвалиться", "отклеиться", "испортиться", "испорченный", "протухнуть",
         "тухлый", "просроченный", "просрочка", "несвежий", "невкусный", "подделка", "вонять",
         "полинять", "линять", "хлипкий", "скрипеть", "пятно", "царапина", "поцарапанный",
         "ржавчина", "заржаветь", "не работать", "перестать работать", "не включаться",
         "перестать включаться", "не заряжаться", "перестать заряжаться", "выйти из строй",
         "плохой качество", "низкий качество", "ужасный качество", "качество упасть",
         "качество хуже", "неприятный запах", "не соответствовать описание",
         "сесть после стирка", "качество так себе"])
    + _entries(C.PRICE,
        ["цена", "стоимость", "ценник", "прайс", "скидка"],
        ["дорого", "дорогой", "дороговато", "дороговатый", "недешево", "не дешево",
         "подорожать", "кусаться", "переплачивать", "переплатить", "переплата", "наценка",
         "накрутка", "завысить", "завышенный", "дешевле", "невыгодно", "невыгодный",
         "не выгодно", "высокий цена", "поднять цена", "повысить цена", "рост цена",
         "не по карман", "нет скидка", "мало скидка", "маленький скидка", "не дать скидка",
         "дорогой доставка", "у конкурент дешевле"])
    + _entries(C.DELIVERY,
        ["доставка", "курьер", "посылка", "упаковка", "самовывоз", "пункт выдача",
         "транспортный компания", "сдэк", "водитель", "грузчик", "доставить", "доставлять",
         "привезти"],
        ["опоздать", "опоздание", "недовоз", "пересорт", "помятый", "потеряться",
         "курьер опоздать", "доставка задержаться", "задержка доставка", "задержать доставка",
         "привезти не то", "привезти не вовремя", "привезти поздно", "не привезти",
         "не доставить", "долго доставлять", "долго везти", "долгий доставка", "долго ехать",
         "ждать курьер", "курьер не приехать", "курьер не прийти", "не приехать",
         "сорвать доставка", "перенести доставка", "потерять посылка", "потерять заказ",
         "помять упаковка", "разбить при доставка", "привезти не весь", "не в то время",
         "не хватать позиция"])
)
# fmt: on

# Praise next to an aspect noun means the aspect is no complaint: "цены нормальные".
_POSITIVE = frozenset(
    {
        "хороший", "хорошо", "отличный", "отлично", "нормальный", "нормально", "быстрый",
        "быстро", "вовремя", "вежливый", "приятный", "устраивать", "понравиться", "нравиться",
        "супер", "замечательный", "прекрасный", "классный", "адекватный", "приемлемый",
        "низкий", "доступный", "демократичный", "удобный", "удобно", "лучший", "качественный",
        "вкусный", "свежий", "молодец", "внимательный", "компетентный", "профессиональный",
        "оперативно", "оперативный", "идеальный", "шикарный", "достойный", "выгодный",
    }
)  # fmt: skip
# The need is gone ("больше не нужен этот товар"): the aspect nearby is no complaint either.
_NEED_GONE = phrases(
    "need_gone", ["не нужный", "не нужно", "не понадобиться", "не нуждаться", "не актуальный"]
)
_WINDOW = 3
# Tie-break after the first mention: the more concrete, more actionable reasons first.
_PRIORITY = (
    C.PRODUCT_QUALITY,
    C.DELIVERY,
    C.PRICE,
    C.MANAGER_COMPETENCE,
    C.NO_CONVENIENT_CHANNEL,
    C.SLOW_PROCESSING,
    C.NO_PERSONAL_APPROACH,
    C.SERVICE_QUALITY,
    C.OTHER,
)


@dataclass(frozen=True, slots=True)
class ReasonMatch:
    category: C
    evidence: tuple[str, ...]  # the triggering words as they appear in the text
    weight: int


@dataclass(frozen=True, slots=True)
class ReasonResult:
    category: C
    evidence: tuple[str, ...]
    matches: tuple[ReasonMatch, ...] = ()  # every category found, strongest first


def _praised(tokens: Sequence[Token], match: Match, negated: Sequence[Match]) -> bool:
    """An aspect noun with praise or a negated complaint nearby: "доставка быстрая"."""
    low, high = max(0, match.first - _WINDOW), min(len(tokens), match.last + _WINDOW + 1)
    for i in range(low, high):
        if i in match.positions or not tokens[i].lemmas & _POSITIVE:
            continue
        if not (i >= 1 and tokens[i - 1].text in NEGATIONS):
            return True
    return any(low <= other.first and other.last < high for other in negated)


def classify_reason(text: str) -> ReasonResult:
    tokens = tokenize(text)
    found = find(tokens, _LEXICON)
    negated = [m for m in found if m.negated] + find(tokens, _NEED_GONE)
    live = [
        m
        for m in longest(m for m in found if not m.negated)
        if m.phrase.weight != _ASPECT or not _praised(tokens, m, negated)
    ]
    totals: dict[C, int] = {}
    first_at: dict[C, int] = {}
    evidence: dict[C, list[str]] = {}
    for m in live:
        category = C(m.phrase.label)
        totals[category] = totals.get(category, 0) + m.phrase.weight
        first_at.setdefault(category, m.first)
        words = evidence.setdefault(category, [])
        surface = m.surface(text, tokens)
        if surface not in words:
            words.append(surface)
    ranked = sorted(totals, key=lambda c: (-totals[c], first_at[c], _PRIORITY.index(c)))
    matches = tuple(ReasonMatch(c, tuple(evidence[c]), totals[c]) for c in ranked)
    if not matches:
        return ReasonResult(C.OTHER, ())
    return ReasonResult(matches[0].category, matches[0].evidence, matches)


def reason_category(text: str | None, score: int | None) -> C | None:
    """The category to file a free answer under, or None.

    A promoter (9-10) answers "what made the high score?": that is what they liked, not a
    reason for unhappiness, so it gets no category (a complaint category on praise would
    count it among churn reasons). Passives, detractors and unscored answers (win-back) are
    classified."""
    if not text:
        return None
    if score is not None and nps_group(score) is NpsGroup.PROMOTER:
        return None
    return classify_reason(text).category
