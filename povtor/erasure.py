"""Erasing a client everywhere on request (152-FZ): one request, every part, resumable.

A request is written first (with the client's phones and code added to the suppression list in
the same transaction), then each part erases what it keeps through its ``ClientErasure`` port
and the ledger records its confirmation, then the request is done. A failure part-way leaves the
request pending with the error and the parts that did confirm: running the erasure again (the
command, or the worker at start) goes on with the parts that did not, so nothing is left
half-erased without a visible trace. The client history store goes last: until then the other
parts can still be told the client's phones and chat, read from it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from povtor.domain import Client
from povtor.errors import NotFound, PovtorError
from povtor.logs import mask_text
from povtor.ports import (
    ClientErasure,
    ClientLookup,
    ErasureLedger,
    ErasureRequest,
    ErasureSubject,
)
from povtor.suppression import client_digests

log = logging.getLogger(__name__)


class ErasureIncomplete(PovtorError):
    """A part failed to erase; the request stays pending and a rerun goes on from there."""

    def __init__(self, request: ErasureRequest, part: str, message: str) -> None:
        super().__init__(f"erasure request #{request.id} stopped at {part}: {message}")
        self.request = request
        self.part = part


@dataclass(frozen=True, slots=True)
class Erasure:
    """Every part that keeps client data, in the order they erase (the store last)."""

    ledger: ErasureLedger
    clients: ClientLookup
    parts: Mapping[str, ClientErasure]

    async def request(self, client: Client, *, by: str) -> ErasureRequest:
        """Open (or find) the pending request of ``client`` and suppress its phones and code."""
        key = await self.ledger.suppression_key()
        digests = client_digests(key, client.phones, client.external_id)
        return await self.ledger.open_request(client.id, by=by, suppress=digests)

    async def run(self, request: ErasureRequest) -> ErasureRequest:
        """Erase the request's client in every part not confirmed yet; the request done.
        Raises ``ErasureIncomplete`` (the request left pending with the error) when a part
        fails."""
        found = await self.clients.get_clients([request.client_id])
        subject = _subject(request.client_id, found.get(request.client_id))
        for name, part in self.parts.items():
            if name in request.removed:
                continue
            try:
                removed = await part.erase_clients([subject])
            except Exception as err:  # recorded on the request, raised as one of ours
                message = mask_text(f"{type(err).__name__}: {err}")
                await self.ledger.failed(request.id, f"{name}: {message}")
                log.error("erasure request #%d: %s failed: %s", request.id, name, message)
                raise ErasureIncomplete(request, name, message) from err
            await self.ledger.confirm(request.id, name, removed)
        done = await self.ledger.finish(request.id)
        log.info("erasure request #%d done (%d parts)", done.id, len(done.removed))
        return done

    async def finish(self, request: ErasureRequest) -> ErasureRequest:
        """``run``; when a part fails, the request as left pending (with the error)."""
        try:
            return await self.run(request)
        except ErasureIncomplete:
            (pending,) = await self.ledger.pending([request.client_id])
            return pending

    async def erase_client(self, client_id: int, *, by: str) -> ErasureRequest:
        """``ClientEraser``: request and run the erasure of one client."""
        found = await self.clients.get_clients([client_id])
        if client_id not in found:
            raise NotFound(f"no client #{client_id}")
        return await self.finish(await self.request(found[client_id], by=by))

    async def resume(self, client_ids: Sequence[int] | None = None) -> list[ErasureRequest]:
        """Run every pending request (of these clients, or all); those that fail stay pending
        and are left out."""
        finished = []
        for request in await self.ledger.pending(client_ids):
            try:
                finished.append(await self.run(request))
            except ErasureIncomplete:
                continue  # logged and recorded on the request
        return finished


def _subject(client_id: int, client: Client | None) -> ErasureSubject:
    if client is None:  # the store erased it already: the parts find what is left by id
        return ErasureSubject(client_id)
    return ErasureSubject(client_id, tuple(client.phones), client.telegram_chat_id)
