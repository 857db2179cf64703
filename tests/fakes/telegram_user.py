"""The simulated-user side of the tests' Telegram (``app.sandbox.telegram_user``)."""

from app.sandbox.telegram_api import BOT_ID
from app.sandbox.telegram_user import SimulatedUser, button_data, button_texts

FakeUser = SimulatedUser

__all__ = ["BOT_ID", "FakeUser", "SimulatedUser", "button_data", "button_texts"]
