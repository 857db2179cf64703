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
    # a second batch, first written blind (before the code saw it)
    ("обслуживание было хамское", C.SERVICE_QUALITY),
    ("девушка на кассе грубая", C.SERVICE_QUALITY),
    ("сотрудники хамят", C.SERVICE_QUALITY),
    ("со мной разговаривали свысока и грубо", C.SERVICE_QUALITY),
    ("никакого индивидуального подхода", C.NO_PERSONAL_APPROACH),
    ("не предложили никакой скидки хотя я постоянный клиент", C.NO_PERSONAL_APPROACH),
    ("не помнят меня каждый раз как в первый раз", C.NO_PERSONAL_APPROACH),
    ("менеджер ничего не знает о товаре", C.MANAGER_COMPETENCE),
    ("менеджер посоветовал не то", C.MANAGER_COMPETENCE),
    ("консультанты некомпетентные", C.MANAGER_COMPETENCE),
    ("не мог дозвониться три дня", C.NO_CONVENIENT_CHANNEL),
    ("хотелось бы заказывать через телеграм", C.NO_CONVENIENT_CHANNEL),
    ("на сайте неудобно заказывать", C.NO_CONVENIENT_CHANNEL),
    ("трубку никто не берет", C.NO_CONVENIENT_CHANNEL),
    ("ждал ответа неделю", C.SLOW_PROCESSING),
    ("очень долго оформляли заказ", C.SLOW_PROCESSING),
    ("заказ собирали три дня", C.SLOW_PROCESSING),
    ("долго не отвечали на заявку", C.SLOW_PROCESSING),
    ("вещь развалилась через месяц", C.PRODUCT_QUALITY),
    ("качество стало хуже", C.PRODUCT_QUALITY),
    ("пришел товар с браком", C.PRODUCT_QUALITY),
    ("телефон перестал включаться", C.PRODUCT_QUALITY),
    ("дороговато", C.PRICE),
    ("цены выросли", C.PRICE),
    ("цена высоковата", C.PRICE),
    ("нашли где дешевле", C.PRICE),
    ("доставили на три дня позже", C.DELIVERY),
    ("курьер не позвонил и не приехал", C.DELIVERY),
    ("доставка очень долгая", C.DELIVERY),
    ("коробка была помята", C.DELIVERY),
    ("всё понравилось", C.OTHER),
    ("всё устраивает", C.OTHER),
    ("больше не нужен этот товар", C.OTHER),
    ("мы закрылись", C.OTHER),
    ("нормально всё", C.OTHER),
    ("быстро привезли и недорого", C.OTHER),
    ("грубые продавцы", C.SERVICE_QUALITY),
    ("менеджер постоянно путает заказы", C.MANAGER_COMPETENCE),
    ("нет скидок", C.PRICE),
    ("цены завышены", C.PRICE),
    ("привезли не вовремя", C.DELIVERY),
    ("курьер задержался на день", C.DELIVERY),
    ("не могу связаться с менеджером", C.NO_CONVENIENT_CHANNEL),
    ("ответ ждать приходится по три дня", C.SLOW_PROCESSING),
    ("ткань плохого качества", C.PRODUCT_QUALITY),
    ("коляска сломалась", C.PRODUCT_QUALITY),
    ("хочется чтобы помнили о постоянных клиентах", C.NO_PERSONAL_APPROACH),
    ("всё хорошо", C.OTHER),
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
