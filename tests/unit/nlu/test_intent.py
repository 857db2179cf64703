"""Intent of short answers to a yes/no question, typed and as speech recognition writes them."""

from __future__ import annotations

import pytest

from nlu import Intent, classify_intent

CASES = [
    # yes
    ("да", Intent.YES),
    ("Да!", Intent.YES),
    ("конечно", Intent.YES),
    ("да конечно", Intent.YES),
    ("давайте", Intent.YES),
    ("ну давайте", Intent.YES),
    ("ага", Intent.YES),
    ("угу", Intent.YES),
    ("можно", Intent.YES),
    ("хорошо", Intent.YES),
    ("ладно давайте", Intent.YES),
    ("да интересно", Intent.YES),
    ("Ок", Intent.YES),
    ("согласен", Intent.YES),
    ("почему бы и нет", Intent.YES),
    ("не против", Intent.YES),
    ("да да слушаю", Intent.YES),
    ("да нужно", Intent.YES),
    # no
    ("нет", Intent.NO),
    ("Нет, спасибо.", Intent.NO),
    ("не надо", Intent.NO),
    ("не нужно", Intent.NO),
    ("неинтересно", Intent.NO),
    ("не интересно", Intent.NO),
    ("нет не хочу", Intent.NO),
    ("спасибо не надо", Intent.NO),
    ("да нет наверное", Intent.NO),
    ("да не надо", Intent.NO),
    ("нет конечно", Intent.NO),
    ("конечно нет", Intent.NO),
    ("неактуально уже", Intent.NO),
    ("мне это не подходит", Intent.NO),
    ("откажусь", Intent.NO),
    # later
    ("перезвоните завтра", Intent.LATER),
    ("Перезвоните, пожалуйста, вечером", Intent.LATER),
    ("сейчас неудобно", Intent.LATER),
    ("позже", Intent.LATER),
    ("давайте попозже", Intent.LATER),
    ("я за рулём", Intent.LATER),
    ("я за рулем", Intent.LATER),
    ("не сейчас", Intent.LATER),
    ("нет перезвоните вечером", Intent.LATER),
    ("да но не сейчас", Intent.LATER),
    ("я на совещании", Intent.LATER),
    ("не могу говорить", Intent.LATER),
    ("сейчас не могу", Intent.LATER),
    ("некогда", Intent.LATER),
    ("наберите через час", Intent.LATER),
    ("я подумаю", Intent.LATER),
    ("нет времени", Intent.LATER),
    # optout (wins over everything)
    ("не звоните мне больше", Intent.OPTOUT),
    ("Не звоните мне больше!", Intent.OPTOUT),
    ("больше не звоните", Intent.OPTOUT),
    ("удалите мой номер", Intent.OPTOUT),
    ("удалите мой номер из базы", Intent.OPTOUT),
    ("отпишите меня", Intent.OPTOUT),
    ("больше не беспокойте", Intent.OPTOUT),
    ("стоп", Intent.OPTOUT),
    ("STOP", Intent.OPTOUT),
    ("не надо мне звонить", Intent.OPTOUT),
    ("хватит звонить", Intent.OPTOUT),
    ("нет и больше не звоните", Intent.OPTOUT),
    ("перезвоните никогда не звоните мне", Intent.OPTOUT),
    ("да удалите номер", Intent.OPTOUT),
    ("отстаньте", Intent.OPTOUT),
    ("не пишите мне больше", Intent.OPTOUT),
    ("внесите меня в черный список", Intent.OPTOUT),
    # unknown
    ("", Intent.UNKNOWN),
    ("не знаю", Intent.UNKNOWN),
    ("может быть", Intent.UNKNOWN),
    ("а кто это", Intent.UNKNOWN),
    ("что", Intent.UNKNOWN),
    ("алло алло", Intent.UNKNOWN),
    ("а сколько стоит", Intent.UNKNOWN),
    ("нет давайте", Intent.UNKNOWN),
    ("не беспокойтесь", Intent.UNKNOWN),
    ("почему вы мне не звонили", Intent.UNKNOWN),
]


@pytest.mark.parametrize(("answer", "expected"), CASES)
def test_answer_has_expected_intent(answer: str, expected: Intent) -> None:
    assert classify_intent(answer) == expected


def test_intent_values_are_the_cli_words() -> None:
    assert [i.value for i in Intent] == ["yes", "no", "later", "optout", "unknown"]
