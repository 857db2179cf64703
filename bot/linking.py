"""Who is this chat: deep-link tokens, shared contacts, manager invites, opt-in with /start."""

from __future__ import annotations

import logging
from datetime import timedelta

import phonenumbers

from bot.delivery import Sender
from bot.keyboards import contact_keyboard
from bot.link_nonces import LinkNonces
from bot.manager_store import ManagerStore
from bot.texts import Texts
from bot.tokens import CLIENT_PREFIX, INVITE_PREFIX, read_link_token
from povtor.db import utcnow
from povtor.domain import Client, ConsentChannel, EventKind
from povtor.errors import NotFound
from povtor.ports import HistoryStore, NewEvent, NewTask

log = logging.getLogger(__name__)
SOURCE = "telegram"


def normalize_phone(raw: str, region: str) -> str | None:
    digits = raw.strip()
    if digits and digits[0].isdigit() and len(digits) > 10:
        digits = "+" + digits  # Telegram sends international numbers without the plus
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class Linking:
    """Links chats to clients (signed deep links, shared contacts) and managers (invites)."""

    def __init__(
        self,
        store: HistoryStore,
        managers: ManagerStore,
        nonces: LinkNonces,
        sender: Sender,
        texts: Texts,
        *,
        region: str,
        secret_key: str,
        link_ttl: timedelta,
    ) -> None:
        self._store = store
        self._managers = managers
        self._nonces = nonces
        self._sender = sender
        self._texts = texts
        self._region = region
        self.secret_key = secret_key  # set again once the shared key is read from the database
        self._link_ttl = link_ttl

    async def _reply(
        self, chat_id: int, key: str, client: Client | None = None, /, **values: object
    ) -> None:
        markup = (
            contact_keyboard(self._texts)
            if key in {"start_unlinked", "link_bad", "not_linked"}
            else None
        )
        await self._sender.send(
            chat_id,
            self._texts(key, **values),
            purpose="reply",
            markup=markup,
            client_id=client.id if client else None,
        )

    async def _linked(self, client: Client, chat_id: int, how: str) -> None:
        client = await self._store.link_telegram(client.id, chat_id)
        await self._store.set_consent(
            client.id, ConsentChannel.TELEGRAM, True, source=f"{SOURCE}:{how}"
        )
        if client.opted_out:
            client = await self._store.set_opt_out(client.id, False, source=f"{SOURCE}:{how}")
        await self._store.append_event(
            NewEvent(
                client_id=client.id,
                kind=EventKind.NOTE,
                summary="Клиент подключил Telegram-бота",
                data={"how": how},
                dedup_key=f"tg:link:{client.id}:{chat_id}",
            )
        )
        await self._reply(chat_id, "link_ok", client, name=client.name)

    async def start(self, chat_id: int, user_name: str, payload: str | None) -> None:
        """/start with or without a deep-link payload."""
        if payload and payload.startswith(INVITE_PREFIX):
            manager = await self._managers.use_invite(payload, chat_id, user_name)
            if manager is None:
                await self._reply(chat_id, "manager_invite_bad")
            else:
                log.info("manager #%d linked", manager.id)
                await self._reply(chat_id, "manager_invite_ok", name=manager.name)
            return
        if payload and payload.startswith(CLIENT_PREFIX):
            await self._start_with_token(chat_id, payload)
            return
        client = await self._store.find_client_by_chat(chat_id)
        if client is None:
            if await self._managers.manager_by_chat(chat_id) is not None:
                await self._reply(chat_id, "help_manager")
            else:
                await self._reply(chat_id, "start_unlinked")
            return
        if client.opted_out:
            client = await self._store.set_opt_out(client.id, False, source=f"{SOURCE}:/start")
            await self._reply(chat_id, "start_opted_back_in", client)
            return
        await self._reply(chat_id, "start_linked", client, name=client.name)

    async def _start_with_token(self, chat_id: int, token: str) -> None:
        claim = read_link_token(self.secret_key, token, ttl=self._link_ttl)
        if claim is None or not await self._nonces.use_link_nonce(
            claim.nonce, claim.client_id, chat_id
        ):
            log.info("rejected a link token in chat …%s", str(chat_id)[-2:])
            await self._reply(chat_id, "link_bad")
            return
        try:
            client = await self._store.get_client(claim.client_id)
        except NotFound:
            await self._reply(chat_id, "link_bad")
            return
        await self._linked(client, chat_id, "link")

    async def contact(
        self, chat_id: int, sender_id: int, contact_user_id: int | None, phone: str
    ) -> None:
        """A shared contact links the chat only if it is the sender's own number."""
        if contact_user_id != sender_id:
            await self._reply(chat_id, "contact_not_own")
            return
        e164 = normalize_phone(phone, self._region)
        client = await self._store.find_client_by_phone(e164) if e164 else None
        if client is None:
            await self._store.create_task(
                NewTask(
                    client_id=None,
                    kind="unknown_contact",
                    title=self._texts("unknown_contact_task"),
                    due_at=utcnow() + timedelta(days=1),
                    note=f"Telegram chat {chat_id}, телефон {e164 or phone}",
                    source_ref=f"telegram:{chat_id}",
                    dedup_key=f"tg:unknown:{chat_id}:{e164 or phone}",
                )
            )
            await self._reply(chat_id, "contact_unknown")
            return
        await self._linked(client, chat_id, "contact")
