"""The simulated-user side of the Bot API emulator: a person writing and pressing buttons."""

from __future__ import annotations

import itertools
import time
from typing import Any

from app.sandbox.telegram_api import BotApiEmulator, Sent

_query_ids = itertools.count(1)


class SimulatedUser:
    """One private chat (chat id == user id, as in Telegram)."""

    def __init__(self, api: BotApiEmulator, user_id: int, first_name: str = "Анна") -> None:
        self.api = api
        self.id = user_id
        self.first_name = first_name
        self.chat = api.add_chat(user_id, first_name)
        self._seen = 0

    def _user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": "ru",
        }

    def _message(self, **body: Any) -> dict[str, Any]:
        return {
            "message_id": self.api.new_message_id(),
            "from": self._user(),
            "chat": {"id": self.id, "type": "private", "first_name": self.first_name},
            "date": int(time.time()),
            **body,
        }

    async def send_text(self, text: str) -> int:
        body: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return await self.api.push_update({"message": self._message(**body)})

    async def send_contact(self, phone: str, *, user_id: int | str | None = "self") -> int:
        """Share a contact; by default the user's own (``user_id`` = sender)."""
        contact: dict[str, Any] = {"phone_number": phone, "first_name": self.first_name}
        owner = self.id if user_id == "self" else user_id
        if owner is not None:
            contact["user_id"] = owner
        return await self.api.push_update({"message": self._message(contact=contact)})

    async def send_voice(self, data: bytes, duration: int = 2) -> int:
        file_id = f"voice{self.api.new_message_id()}"
        self.api.files[file_id] = data
        voice = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(data),
        }
        return await self.api.push_update({"message": self._message(voice=voice)})

    async def press(self, message: Sent, button_text: str) -> str:
        """Press an inline button of a bot message; returns the callback query id."""
        data = button_data(message, button_text)
        query_id = f"{self.id}-{next(_query_ids)}"
        self.api.callback_answers[query_id] = None
        await self.api.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self._user(),
                    "message": self.api._message_json(message),
                    "chat_instance": f"ci{self.id}",
                    "data": data,
                }
            }
        )
        return query_id

    async def answer_to(self, query_id: str, within: float = 10.0) -> str | None:
        """The toast text the bot answered a button press with."""
        await self.api.wait_for(
            lambda: self.api.callback_answers.get(query_id) is not None, within
        )
        answer = self.api.callback_answers[query_id]
        return None if answer is None else answer.get("text")

    def messages(self) -> list[Sent]:
        return [m for m in self.api.sent if m.chat_id == self.id]

    async def next_message(self, within: float = 10.0) -> Sent:
        """The next message the bot sends to this chat (in order; each returned once)."""
        await self.api.wait_for(lambda: len(self.messages()) > self._seen, within)
        message = self.messages()[self._seen]
        self._seen += 1
        return message

    def skip_seen(self) -> None:
        self._seen = len(self.messages())


def button_data(message: Sent, button_text: str) -> str:
    markup = message.reply_markup or {}
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if button["text"] == button_text:
                return str(button["callback_data"])
    raise AssertionError(f"no button {button_text!r} in {markup}")


def button_texts(message: Sent) -> list[str]:
    markup = message.reply_markup or {}
    rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
    return [b["text"] if isinstance(b, dict) else b for row in rows for b in row]


__all__ = ["SimulatedUser", "button_data", "button_texts"]
