"""/offers: the client is asked whether we may send offers (messages and calls with reorder
reminders and win-back offers); the answer is recorded as advertising consent with its source
and time, and the change goes into the client's timeline."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.delivery import Sender
from bot.keyboards import ConsentCb
from bot.texts import Texts
from povtor.domain import Client, ConsentChannel, ContactKind
from povtor.ports import HistoryStore

SOURCE = "telegram:/offers"
CHANNELS = (ConsentChannel.TELEGRAM, ConsentChannel.CALL)


def consent_keyboard(texts: Texts) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=texts("offers_button_yes"), callback_data=ConsentCb(yes=True).pack()
                ),
                InlineKeyboardButton(
                    text=texts("offers_button_no"), callback_data=ConsentCb(yes=False).pack()
                ),
            ]
        ]
    )


async def ask(sender: Sender, texts: Texts, client: Client, chat_id: int) -> None:
    granted = client.consent_for(ConsentChannel.TELEGRAM, ContactKind.ADVERTISING)
    now = "offers_now_yes" if granted and granted.granted else "offers_now_no"
    text = texts("offers_ask") + "\n\n" + texts(now)
    await sender.send(
        chat_id, text, purpose="reply", markup=consent_keyboard(texts), client_id=client.id
    )


async def answer(store: HistoryStore, texts: Texts, client: Client, yes: bool) -> str:
    """Record the answer for messages and calls; the toast to show."""
    for channel in CHANNELS:
        await store.set_consent(
            client.id, channel, yes, source=SOURCE, kind=ContactKind.ADVERTISING
        )
    return texts("offers_yes" if yes else "offers_no")
