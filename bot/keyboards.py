"""Buttons and their callback data (each well under Telegram's 64 bytes)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.texts import Texts


class AnswerCb(CallbackData, prefix="a"):
    """A client's answer to a reminder or win-back message: ``msg`` is the outbox id."""

    msg: int
    act: str  # repeat, later, no, return


class ScoreCb(CallbackData, prefix="n"):
    msg: int
    score: int


class AlertCb(CallbackData, prefix="m"):
    alert: int
    act: str  # take, fu, res, d1, d3, d7


class ConsentCb(CallbackData, prefix="c"):
    """The answer to /offers: may we send offers by message and call."""

    yes: bool


REORDER_ACTIONS = ("repeat", "later", "no")
WINBACK_ACTIONS = ("return", "no")


def reorder_keyboard(texts: Texts, outbox_id: int) -> InlineKeyboardMarkup:
    names = {"repeat": "reorder_button_repeat", "later": "reorder_button_later"}
    names["no"] = "reorder_button_no"
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=texts(names[a]), callback_data=AnswerCb(msg=outbox_id, act=a).pack()
                )
            ]
            for a in REORDER_ACTIONS
        ]
    )


def winback_keyboard(texts: Texts, outbox_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=texts("winback_button_return"),
                    callback_data=AnswerCb(msg=outbox_id, act="return").pack(),
                ),
                InlineKeyboardButton(
                    text=texts("winback_button_no"),
                    callback_data=AnswerCb(msg=outbox_id, act="no").pack(),
                ),
            ]
        ]
    )


def nps_keyboard(outbox_id: int) -> InlineKeyboardMarkup:
    def button(score: int) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            text=str(score), callback_data=ScoreCb(msg=outbox_id, score=score).pack()
        )

    return InlineKeyboardMarkup(
        inline_keyboard=[[button(s) for s in range(0, 6)], [button(s) for s in range(6, 11)]]
    )


def alert_keyboard(texts: Texts, alert_id: int) -> InlineKeyboardMarkup:
    def button(name: str, act: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            text=texts(name), callback_data=AlertCb(alert=alert_id, act=act).pack()
        )

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button("alert_button_take", "take"), button("alert_button_resolve", "res")],
            [button("alert_button_followup", "fu")],
        ]
    )


def due_keyboard(texts: Texts, alert_id: int) -> InlineKeyboardMarkup:
    def button(days: int) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            text=texts(f"alert_button_due_{days}"),
            callback_data=AlertCb(alert=alert_id, act=f"d{days}").pack(),
        )

    return InlineKeyboardMarkup(inline_keyboard=[[button(1), button(3), button(7)]])


def contact_keyboard(texts: Texts) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=texts("share_contact_button"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )
