"""One event to the CRM: the client's contact found or created (and remembered), then the note
or task created, or found in the CRM when an earlier try may already have created it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from crm_sync.connectors.errors import CrmRefused, CrmTransient
from crm_sync.outbound.state import PushState
from povtor.domain import Client
from povtor.ports import CrmConnector, CrmNote, CrmTask

log = logging.getLogger(__name__)


class Delivery:
    def __init__(
        self,
        connector: CrmConnector,
        state: PushState,
        *,
        external_id_is_crm_id: bool,
        clock: Callable[[], datetime],
    ) -> None:
        self.connector = connector
        self._state = state
        self._external_ids = external_id_is_crm_id
        self._clock = clock

    async def deliver(
        self,
        client: Client,
        payload: CrmNote | CrmTask,
        contacts: dict[int, str],
        in_doubt: bool,
    ) -> str:
        """The CRM's id of the note or task. ``contacts``: client id -> contact id, known so far
        (updated here)."""
        try:
            contact = contacts.get(client.id) or await self._resolve(client, contacts)
        except CrmTransient as err:
            # Whatever may have landed is a contact, found again by phone or origin id next
            # time; the event itself was not sent.
            err.maybe_applied = False
            raise
        try:
            return await self._create(contact, payload, in_doubt=in_doubt)
        except CrmRefused:
            if await self.connector.contact_exists(contact):
                raise
            # The contact was deleted or merged in the CRM: find (or create) it again.
            log.info("CRM contact of client #%s is gone; resolving it again", client.id)
            await self._state.forget_contact(client.id)
            contacts.pop(client.id, None)
            contact = await self._resolve(client, contacts)
            return await self._create(contact, payload, in_doubt=False)

    async def _create(self, contact: str, payload: CrmNote | CrmTask, *, in_doubt: bool) -> str:
        if isinstance(payload, CrmTask):
            if in_doubt and (found := await self.connector.find_task(contact, payload.key)):
                return found
            return await self.connector.add_task(contact, payload)
        if in_doubt and (found := await self.connector.find_note(contact, payload.key)):
            return found
        return await self.connector.add_note(contact, payload)

    async def _resolve(self, client: Client, contacts: dict[int, str]) -> str:
        created = False
        remote: str | None = None
        if self._external_ids and await self.connector.contact_exists(client.external_id):
            remote = client.external_id
        if remote is None:
            remote = await self.connector.find_contact(client)
        if remote is None:
            remote = await self.connector.create_contact(client)
            created = True
        await self._state.remember_contact(client.id, remote, created=created, now=self._clock())
        contacts[client.id] = remote
        return remote
