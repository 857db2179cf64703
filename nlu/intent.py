"""Intent of a short answer to a yes/no question: yes, no, later, optout or unknown.

Priority: an opt-out wins over everything (stopping contact is a legal matter: "нет, и больше не
звоните" is an opt-out), then "later" ("нет, перезвоните вечером" asks for a call back), then yes
against no. "да нет" is the colloquial "no"; yes and no words together otherwise give unknown.
Hesitation alone ("не знаю", "может быть") gives unknown.
"""

from __future__ import annotations

from enum import StrEnum

from nlu.normalize import tokenize
from nlu.phrases import find, longest, phrases


class Intent(StrEnum):
    YES = "yes"
    NO = "no"
    LATER = "later"
    OPTOUT = "optout"
    UNKNOWN = "unknown"


OPTOUT_PHRASES = phrases(
    Intent.OPTOUT,
    [
        # Surface forms of the verbs: "не звоните" is an opt-out, "не звонили" is not.
        "не =звоните", "не =звонить", "не =звони", "не надо =звонить", "не нужно =звонить",
        "хватит =звонить", "хватит =названивать", "перестаньте =звонить",
        "прекратите =звонить", "прекратить =звонить", "прекратите =звонки", "не =пишите",
        "не =писать", "не =присылайте", "не =присылать", "хватит =писать",
        "перестаньте =писать", "прекратите =писать", "не =беспокойте", "не =беспокоить",
        "хватит =беспокоить", "не =тревожьте", "не =названивайте", "stop",
        "удалить номер", "удалить телефон", "удалить меня", "удалить контакт", "удалить данные",
        "удалить из база", "удалить из список", "убрать номер", "убрать меня", "убрать из база",
        "убрать из список", "вычеркнуть", "исключить из база", "исключить меня",
        "отписать", "отписаться", "отписка", "черный список", "стоп", "спам",
        "отстать", "отвязаться", "достали", "не давать согласие", "отозвать согласие",
        "без согласие", "не соглашаться на звонок", "запретить звонить",
    ],
)  # fmt: skip

LATER_PHRASES = phrases(
    Intent.LATER,
    [
        "перезвонить", "позвонить позже", "позвонить попозже", "позвонить завтра",
        "позвонить потом", "позвонить вечером", "позвонить утром", "набрать позже",
        "набрать завтра", "набрать потом", "наберите", "позже", "попозже", "потом", "завтра",
        "вечером", "через час", "через неделю", "через пару", "в другой раз", "в другое время",
        "не сейчас", "сейчас не мочь", "сейчас неудобно", "неудобно", "некогда", "не время",
        "занят", "занята", "заняты", "за рулем", "на совещание", "на встреча", "на работа",
        "на собрание", "в дорога", "не мочь говорить", "не мочь разговаривать", "не до того",
        "не до этого", "подумать", "созвониться", "в другой день", "сейчас нет", "нет время",
        "не удобно", "следующий неделя", "в следующий раз", "на выходной", "понедельник",
        "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье", "через полчаса",
    ],
)  # fmt: skip

# "да"-like words that only stress a following "no": "да нет", "конечно нет", "ну да, не надо".
_PARTICLE_YES = frozenset({"да", "конечно", "естественно", "разумеется", "ну", "точно"})

YES_PHRASES = phrases(
    Intent.YES,
    [
        "да", "конечно", "давайте", "давай", "ага", "угу", "можно", "хорошо", "ладно",
        "согласный", "согласна", "согласен", "естественно", "разумеется", "ок", "окей", "okay",
        "ok", "yes", "пожалуй", "не против", "не возражать", "почему бы и нет", "с удовольствие",
        "интересно", "интересный", "хотеть", "нужно", "надо", "актуально", "подходить",
        "устраивать", "интересовать", "верно", "точно", "именно", "ну да", "да да", "ес",
        "идет", "договорились",
        "валяйте", "записывайте", "оформляйте", "слушаю",
    ],
)  # fmt: skip

NO_PHRASES = phrases(
    Intent.NO,
    [
        "нет", "неа", "не надо", "не нужно", "неинтересно", "неинтересный", "не интересно",
        "не интересный", "не хотеть", "не буду", "не стать", "не актуально", "неактуально",
        "не подходить", "не устраивать", "не интересовать", "отказаться", "отказываться",
        "обойтись", "нельзя",
        "не стоит", "ни в коем случае", "не согласный", "не согласен", "не согласна", "да нет",
        "конечно нет", "нет конечно", "не требоваться", "no", "не хочется", "никак нет",
        "спасибо не надо", "ненужно", "не очень", "да ну",
    ],
)  # fmt: skip

_NOT = frozenset({"не", "ни"})

_HESITATION = phrases(
    Intent.UNKNOWN,
    ["не знать", "не уверенный", "не уверен", "может быть", "возможно", "не понять", "что"],
)


def classify_intent(text: str) -> Intent:
    tokens = tokenize(text)
    if not tokens:
        return Intent.UNKNOWN
    if any(not m.negated for m in find(tokens, OPTOUT_PHRASES)):
        return Intent.OPTOUT
    if any(not m.negated for m in find(tokens, LATER_PHRASES)):
        return Intent.LATER
    # Only "не" negates here: "нет, давайте" is a change of mind, not a negated "давайте".
    found = find(tokens, YES_PHRASES + NO_PHRASES + _HESITATION, negators=_NOT)
    matches = longest(m for m in found if not m.negated)
    labels = {m.phrase.label for m in matches}
    if Intent.NO in labels and Intent.YES in labels:
        yes_words = {
            tokens[i].text for m in matches if m.phrase.label == Intent.YES for i in m.positions
        }
        return Intent.NO if yes_words <= _PARTICLE_YES else Intent.UNKNOWN
    if labels == {Intent.YES}:
        return Intent.YES
    if labels == {Intent.NO}:
        return Intent.NO
    return Intent.UNKNOWN
