"""aiogram's Telegram objects and methods bind their bot in one step instead of one per class.

Every aiogram object (an update and each object in it, a method such as
``answerCallbackQuery``) keeps the bot it came with in its one private attribute ``_bot``, set
by ``BotContextController.model_post_init`` when pydantic builds it. pydantic wraps that hook
again in every subclass (``wrapped_model_post_init``: private attributes initialised, then the
parent's hook), so a ``CallbackQuery`` runs the chain three or four levels deep, about 11
objects per button press: a quarter of the time to validate a polled update.
:func:`bind_bot_in_one_step` gives each of these classes a hook with the same result (the
private attributes ``{"_bot": bot}``, the bot from the validation context or None) in one
step, for the classes whose only private attribute is ``_bot`` and whose hook is aiogram's
(any other class keeps pydantic's chain).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from aiogram.client.context_controller import BotContextController

_set = object.__setattr__
_ORIGINAL = inspect.unwrap(BotContextController.model_post_init)


def _bind_bot(self: BotContextController, context: Any, /) -> None:
    _set(self, "__pydantic_private__", {"_bot": context.get("bot") if context else None})


def _classes(root: type[Any]) -> Iterator[type[Any]]:
    for sub in root.__subclasses__():
        yield sub
        yield from _classes(sub)


def _replaceable(cls: type[Any]) -> bool:
    hook = cls.__dict__.get("model_post_init")
    return (
        hook is not None
        and set(cls.__private_attributes__) == {"_bot"}
        and getattr(cls, "__pydantic_post_init__", None) == "model_post_init"
        and inspect.unwrap(hook) in (_ORIGINAL, _bind_bot)  # aiogram's, or one made later
    )


def bind_bot_in_one_step() -> int:
    """Give aiogram's object and method classes the one-step hook (idempotent); the number of
    classes changed by this call."""
    changed = 0
    classes: list[type[Any]] = [BotContextController, *_classes(BotContextController)]
    for cls in dict.fromkeys(classes):
        if cls.__dict__.get("model_post_init") is not _bind_bot and _replaceable(cls):
            cls.model_post_init = _bind_bot
            changed += 1
    return changed
