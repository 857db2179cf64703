"""Reason categories of free-text comments, with the words that triggered them."""

from __future__ import annotations

import pytest

from nlu import ReasonResult, classify_reason
from povtor.domain import ReasonCategory as C

CASES = [
    # service quality
    ("менеджер грубил", C.SERVICE_QUALITY),
    ("Мне нахамили по телефону", C.SERVICE_QUALITY),
    ("хамство продавцов", C.SERVICE_QUALITY),
    ("ужасный сервис", C.SERVICE_QUALITY),
    ("качество обслуживания ужасное", C.SERVICE_QUALITY),
    ("на меня накричали и бросили трубку", C.SERVICE_QUALITY),
    ("равнодушие к клиентам", C.SERVICE_QUALITY),
    # no personal approach
    ("хотелось бы индивидуальный подход", C.NO_PERSONAL_APPROACH),
    ("нет скидок для постоянных клиентов", C.NO_PERSONAL_APPROACH),
    ("сделайте скидку для постоянных", C.NO_PERSONAL_APPROACH),
    ("общаются по шаблону как с конвейера", C.NO_PERSONAL_APPROACH),
    ("постоянных клиентов совсем не ценят", C.NO_PERSONAL_APPROACH),
    ("нет программы лояльности", C.NO_PERSONAL_APPROACH),
    # manager competence
    ("менеджер не разбирается в товаре", C.MANAGER_COMPETENCE),
    ("некомпетентный менеджер", C.MANAGER_COMPETENCE),
    ("консультант не смог ответить на простой вопрос", C.MANAGER_COMPETENCE),
    ("менеджер всё перепутал в заказе", C.MANAGER_COMPETENCE),
    ("продавцы непрофессиональные", C.MANAGER_COMPETENCE),
    ("не смогли толком объяснить чем отличаются модели", C.MANAGER_COMPETENCE),
    # no convenient channel
    ("не могу до вас дозвониться", C.NO_CONVENIENT_CHANNEL),
    ("невозможно дозвониться", C.NO_CONVENIENT_CHANNEL),
    ("у вас нет чата", C.NO_CONVENIENT_CHANNEL),
    ("чата нет а звонить неудобно", C.NO_CONVENIENT_CHANNEL),
    ("никто не берет трубку", C.NO_CONVENIENT_CHANNEL),
    ("хотелось бы писать в телеграм а не звонить", C.NO_CONVENIENT_CHANNEL),
    ("нет вотсапа", C.NO_CONVENIENT_CHANNEL),
    # slow processing
    ("долго ждали ответа", C.SLOW_PROCESSING),
    ("заказ обрабатывали неделю", C.SLOW_PROCESSING),
    ("очень медленно оформляют", C.SLOW_PROCESSING),
    ("счет выставляли три дня волокита", C.SLOW_PROCESSING),
    ("обещали перезвонить и не перезвонили", C.SLOW_PROCESSING),
    ("не очень дорого но долго", C.SLOW_PROCESSING),
    # product quality
    ("товар сломался через неделю", C.PRODUCT_QUALITY),
    ("брак", C.PRODUCT_QUALITY),
    ("Качество плохое.", C.PRODUCT_QUALITY),
    ("пришел бракованный чайник", C.PRODUCT_QUALITY),
    ("куртка порвалась и полиняла", C.PRODUCT_QUALITY),
    ("продукты несвежие", C.PRODUCT_QUALITY),
    ("перестал работать через месяц", C.PRODUCT_QUALITY),
    # price
    ("дорого", C.PRICE),
    ("Слишком дорого!", C.PRICE),
    ("цены кусаются", C.PRICE),
    ("у конкурентов дешевле", C.PRICE),
    ("цены высокие", C.PRICE),
    ("после повышения цен перестали брать подорожало всё", C.PRICE),
    ("недешево у вас", C.PRICE),
    # delivery
    ("курьер опоздал", C.DELIVERY),
    ("Курьер опять опоздал на два часа", C.DELIVERY),
    ("цены нормальные но доставка долгая", C.DELIVERY),
    ("привезли не то", C.DELIVERY),
    ("посылка потерялась", C.DELIVERY),
    ("доставку перенесли три раза", C.DELIVERY),
    ("курьер не приехал в назначенное время", C.DELIVERY),
    ("долго везли", C.DELIVERY),
    # other: praise, negated complaints, unrelated
    ("", C.OTHER),
    ("всё отлично спасибо", C.OTHER),
    ("быстрая доставка", C.OTHER),
    ("не дорого", C.OTHER),
    ("курьер не опоздал всё хорошо", C.OTHER),
    ("задержек не было", C.OTHER),
    ("переехали в другой город", C.OTHER),
    ("просто больше не нужно", C.OTHER),
    ("ничего не нужно всё устраивает", C.OTHER),
    ("цены адекватные", C.OTHER),
]


@pytest.mark.parametrize(("comment", "expected"), CASES)
def test_comment_has_expected_reason(comment: str, expected: C) -> None:
    assert classify_reason(comment).category == expected


@pytest.mark.parametrize(
    ("comment", "evidence"),
    [
        ("курьер опоздал", ("курьер опоздал",)),
        ("Курьер опять опоздал", ("Курьер опять опоздал",)),
        ("Слишком дорого, у конкурентов дешевле", ("дорого", "у конкурентов дешевле")),
        ("ТОВАР СЛОМАЛСЯ", ("ТОВАР", "СЛОМАЛСЯ")),
        ("Менеджер ХАМИЛ", ("Менеджер ХАМИЛ",)),
        ("всё хорошо", ()),
    ],
)
def test_evidence_is_the_triggering_words_as_written(
    comment: str, evidence: tuple[str, ...]
) -> None:
    assert classify_reason(comment).evidence == evidence


def test_every_matching_category_is_kept_strongest_first() -> None:
    result = classify_reason("дорого и курьер опоздал, ещё и менеджер нахамил")
    assert result.category == C.DELIVERY
    assert [m.category for m in result.matches] == [
        C.DELIVERY,
        C.PRICE,
        C.SERVICE_QUALITY,
        C.MANAGER_COMPETENCE,
    ]
    assert result.matches[0].evidence == result.evidence == ("курьер опоздал",)


def test_tie_goes_to_the_reason_mentioned_first() -> None:
    assert classify_reason("долго и дорого").category == C.SLOW_PROCESSING
    assert classify_reason("дорого и долго").category == C.PRICE


def test_other_has_no_evidence_and_no_matches() -> None:
    assert classify_reason("спасибо за всё") == ReasonResult(C.OTHER, ())
