"""The tests' Telegram: the product's Bot API emulator (``app.sandbox.telegram_api``), which
began as this fake and keeps its strictness."""

from app.sandbox.telegram_api import (
    BOT_ID,
    BOT_USERNAME,
    MAX_CALLBACK_DATA,
    MAX_TEXT,
    NOT_MODIFIED,
    TOKEN,
    ApiError,
    BotApiEmulator,
    Chat,
    Failure,
    Sent,
    Webhook,
)

FakeTelegram = BotApiEmulator

__all__ = [
    "BOT_ID",
    "BOT_USERNAME",
    "MAX_CALLBACK_DATA",
    "MAX_TEXT",
    "NOT_MODIFIED",
    "TOKEN",
    "ApiError",
    "BotApiEmulator",
    "Chat",
    "Failure",
    "FakeTelegram",
    "Sent",
    "Webhook",
]
