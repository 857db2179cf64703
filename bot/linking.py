"""Who is this chat: deep-link tokens, shared contacts, manager invites, opt-in with /start."""

from __future__ import annotations

import logging
from datetime import timedelta

import phonenumbers

from bot.deps import BotDeps
from bot.keyboards import contact_keyboard
from bot.tokens import CLIENT_PREFIX, INVITE_PREFIX, read_link_token
from povtor.db import utcnow
from povtor.domain import Client, ConsentChannel, EventKind
from povtor.errors import NotFound
from povtor.ports import NewEvent, NewTask

log = logging.getLogger(__name__)
SOURCE = "telegram"


async def _reply(
    deps: BotDeps, chat_id: int, key: str, client: Client | None = None, /, **values: object
) -> None:
    markup = (
        contact_keyboard(deps.texts)
        if key in {"start_unlinked", "link_bad", "not_linked"}
        else None
    )
    await deps.sender.send(
        chat_id,
        deps.texts(key, **values),
        purpose="reply",
        markup=markup,
        client_id=client.id if client else None,
    )


async def _linked(deps: BotDeps, client: Client, chat_id: int, how: str) -> None:
    client = await deps.store.link_telegram(client.id, chat_id)
    await deps.store.set_consent(
        client.id, ConsentChannel.TELEGRAM, True, source=f"{SOURCE}:{how}"
    )
    if client.opted_out:
        client = await deps.store.set_opt_out(client.id, False, source=f"{SOURCE}:{how}")
    await deps.store.append_event(
        NewEvent(
            client_id=client.id,
            kind=EventKind.NOTE,
            summary="Клиент подключил Telegram-бота",
            data={"how": how},
            dedup_key=f"tg:link:{client.id}:{chat_id}",
        )
    )
    await _reply(deps, chat_id, "link_ok", client, name=client.name)


async def start(deps: BotDeps, chat_id: int, user_name: str, payload: str | None) -> None:
    """/start with or without a deep-link payload."""
    if payload and payload.startswith(INVITE_PREFIX):
        manager = await deps.managers.use_invite(payload, chat_id, user_name)
        if manager is None:
            await _reply(deps, chat_id, "manager_invite_bad")
        else:
            log.info("manager #%d linked", manager.id)
            await _reply(deps, chat_id, "manager_invite_ok", name=manager.name)
        return
    if payload and payload.startswith(CLIENT_PREFIX):
        await _start_with_token(deps, chat_id, payload)
        return
    client = await deps.store.find_client_by_chat(chat_id)
    if client is None:
        if await deps.managers.manager_by_chat(chat_id) is not None:
            await _reply(deps, chat_id, "help_manager")
        else:
            await _reply(deps, chat_id, "start_unlinked")
        return
    if client.opted_out:
        client = await deps.store.set_opt_out(client.id, False, source=f"{SOURCE}:/start")
        await _reply(deps, chat_id, "start_opted_back_in", client)
        return
    await _reply(deps, chat_id, "start_linked", client, name=client.name)


async def _start_with_token(deps: BotDeps, chat_id: int, token: str) -> None:
    claim = read_link_token(deps.secret_key, token, ttl=deps.link_ttl)
    if claim is None or not await deps.nonces.use_link_nonce(
        claim.nonce, claim.client_id, chat_id
    ):
        log.info("rejected a link token in chat …%s", str(chat_id)[-2:])
        await _reply(deps, chat_id, "link_bad")
        return
    try:
        client = await deps.store.get_client(claim.client_id)
    except NotFound:
        await _reply(deps, chat_id, "link_bad")
        return
    await _linked(deps, client, chat_id, "link")


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


async def contact(
    deps: BotDeps, chat_id: int, sender_id: int, contact_user_id: int | None, phone: str
) -> None:
    """A shared contact links the chat only if it is the sender's own number."""
    if contact_user_id != sender_id:
        await _reply(deps, chat_id, "contact_not_own")
        return
    e164 = normalize_phone(phone, deps.settings.default_region)
    client = await deps.store.find_client_by_phone(e164) if e164 else None
    if client is None:
        await deps.store.create_task(
            NewTask(
                client_id=None,
                kind="unknown_contact",
                title=deps.texts("unknown_contact_task"),
                due_at=utcnow() + timedelta(days=1),
                note=f"Telegram chat {chat_id}, телефон {e164 or phone}",
                source_ref=f"telegram:{chat_id}",
                dedup_key=f"tg:unknown:{chat_id}:{e164 or phone}",
            )
        )
        await _reply(deps, chat_id, "contact_unknown")
        return
    await _linked(deps, client, chat_id, "contact")
