"""Bitrix24 through an inbound webhook: ``https://<portal>/rest/<user_id>/<token>/<method>.json``.

Contacts are found by phone with ``crm.duplicate.findbycomm`` (Bitrix24 compares normalised
numbers there; ``crm.contact.list`` filters phones by exact spelling only), then by the
``ORIGINATOR_ID``/``ORIGIN_ID`` pair Povtor sets on contacts it creates. Each event becomes a
``crm.timeline.comment.add`` on the contact, tasks a ``crm.activity.todo.add``. Errors come as
``{"error": ..., "error_description": ...}``; the rate limit (a leaky bucket, ~2 requests a
second) answers HTTP 503 ``QUERY_LIMIT_EXCEEDED``.
"""

from __future__ import annotations

from typing import Any

from crm_sync.connectors.errors import (
    CrmAuthFailed,
    CrmRateLimited,
    CrmRefused,
    CrmTransient,
)
from crm_sync.connectors.http import CrmHttp, Response
from crm_sync.connectors.names import person_name
from crm_sync.connectors.phones import spellings
from povtor.domain import Client
from povtor.ports import CrmNote, CrmTask

CONTACT_TYPE_ID = 3  # CRM entity type id of contacts (ownerTypeId of activities)
LOOKUP_PAGES = 20  # a lookup reads at most this many pages of a contact's comments or to-dos
ORIGINATOR = "povtor"  # ORIGINATOR_ID of contacts Povtor creates; ORIGIN_ID = external id
RATE_LIMIT_WAIT_S = 1.0  # the bucket drains ~2 requests a second
OPERATING_LIMIT_WAIT_S = 60.0  # a method over its execution-time budget
RATE_LIMIT_RETRIES = 4  # in a row, waiting twice as long each time, then the caller decides
MAX_INLINE_WAIT_S = 20.0  # longer waits go back to the caller (the event is retried later)
AUTH_ERRORS = frozenset(
    {
        "expired_token",
        "invalid_token",
        "INVALID_CREDENTIALS",
        "NO_AUTH_FOUND",
        "insufficient_scope",
        "ACCESS_DENIED",
        "authorization_error",
        "WRONG_AUTH_TYPE",
        "OVERLOAD_LIMIT",  # the portal blocked this webhook; an administrator has to act
    }
)


class Bitrix24:
    name = "bitrix24"

    def __init__(
        self,
        webhook_url: str,
        http: CrmHttp,
        *,
        responsible_id: int | None = None,
        rate_limit_wait_s: float = RATE_LIMIT_WAIT_S,
    ) -> None:
        self._base = webhook_url.rstrip("/") + "/"
        self._http = http
        self._responsible_id = responsible_id
        self._rate_limit_wait_s = rate_limit_wait_s

    @property
    def endpoint(self) -> str:
        """Where requests go (the webhook URL holds the token: never log it)."""
        return self._base

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One REST method; the whole answer (``result``, ``total``, ``next``). A rate-limit
        answer holds every request back and is retried here (nothing was applied)."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            resp = await self._http.request("POST", f"{self._base}{method}.json", json_body=params)
            if resp.status == 200 and isinstance(resp.body, dict) and "result" in resp.body:
                return resp.body
            err = _error(method, resp, self._rate_limit_wait_s)
            if not isinstance(err, CrmRateLimited):
                raise err
            pause = err.retry_after * 2**attempt
            self._http.limiter.pause(pause)
            if pause > MAX_INLINE_WAIT_S or attempt == RATE_LIMIT_RETRIES:
                raise err
        raise AssertionError("unreachable")

    # -- contacts ------------------------------------------------------------------------------

    async def find_contact(self, client: Client) -> str | None:
        values = [s for phone in client.phones for s in spellings(phone)][:20]
        if values:
            body = await self.call(
                "crm.duplicate.findbycomm",
                {"type": "PHONE", "values": values, "entity_type": "CONTACT"},
            )
            found = body["result"]
            ids = found.get("CONTACT", []) if isinstance(found, dict) else []
            if ids:
                return str(min(int(i) for i in ids))
        body = await self.call(
            "crm.contact.list",
            {
                "filter": {"ORIGINATOR_ID": ORIGINATOR, "ORIGIN_ID": client.external_id},
                "select": ["ID"],
                "order": {"ID": "ASC"},
            },
        )
        rows = body["result"]
        return str(rows[0]["ID"]) if rows else None

    async def contact_exists(self, contact_id: str) -> bool:
        if not contact_id.isdigit():
            return False
        body = await self.call(
            "crm.contact.list", {"filter": {"ID": int(contact_id)}, "select": ["ID"]}
        )
        return bool(body["result"])

    async def create_contact(self, client: Client) -> str:
        name = person_name(client)
        fields: dict[str, Any] = {
            "NAME": name.first,
            "OPENED": "Y",
            "TYPE_ID": "CLIENT",
            "SOURCE_DESCRIPTION": "Повтор",
            "ORIGINATOR_ID": ORIGINATOR,
            "ORIGIN_ID": client.external_id,
        }
        if name.last:
            fields["LAST_NAME"] = name.last
        if name.middle:
            fields["SECOND_NAME"] = name.middle
        if client.phones:
            fields["PHONE"] = [{"VALUE": p, "VALUE_TYPE": "MOBILE"} for p in client.phones]
        if client.email:
            fields["EMAIL"] = [{"VALUE": client.email, "VALUE_TYPE": "WORK"}]
        if self._responsible_id is not None:
            fields["ASSIGNED_BY_ID"] = self._responsible_id
        body = await self.call(
            "crm.contact.add", {"fields": fields, "params": {"REGISTER_SONET_EVENT": "N"}}
        )
        return str(int(body["result"]))

    # -- timeline ------------------------------------------------------------------------------

    async def add_note(self, contact_id: str, note: CrmNote) -> str:
        body = await self.call(
            "crm.timeline.comment.add",
            {
                "fields": {
                    "ENTITY_ID": int(contact_id),
                    "ENTITY_TYPE": "contact",
                    "COMMENT": note.text,
                }
            },
        )
        return str(int(body["result"]))

    async def find_note(self, contact_id: str, key: str) -> str | None:
        return await self._find(
            "crm.timeline.comment.list",
            {
                "filter": {"ENTITY_ID": int(contact_id), "ENTITY_TYPE": "contact"},
                "select": ["ID", "COMMENT"],
                "order": {"ID": "DESC"},
            },
            "COMMENT",
            key,
        )

    async def add_task(self, contact_id: str, task: CrmTask) -> str:
        params: dict[str, Any] = {
            "ownerTypeId": CONTACT_TYPE_ID,
            "ownerId": int(contact_id),
            "deadline": task.due_at.isoformat(timespec="seconds"),
            "title": task.title,
            "description": task.text,
        }
        if self._responsible_id is not None:
            params["responsibleId"] = self._responsible_id
        body = await self.call("crm.activity.todo.add", params)
        result = body["result"]
        return str(int(result["id"] if isinstance(result, dict) else result))

    async def find_task(self, contact_id: str, key: str) -> str | None:
        return await self._find(
            "crm.activity.list",
            {
                "filter": {"OWNER_TYPE_ID": CONTACT_TYPE_ID, "OWNER_ID": int(contact_id)},
                "select": ["ID", "DESCRIPTION"],
                "order": {"ID": "DESC"},
            },
            "DESCRIPTION",
            key,
        )

    async def _find(self, method: str, params: dict[str, Any], field: str, key: str) -> str | None:
        """Walk a list method's pages (50 rows each, newest first) for the row with ``key``."""
        start: Any = 0
        for _ in range(LOOKUP_PAGES):
            body = await self.call(method, {**params, "start": start})
            found = _with_key(body["result"], field, key)
            if found is not None or body.get("next") is None:
                return found
            start = body["next"]
        return None

    async def aclose(self) -> None:
        await self._http.aclose()


def _with_key(rows: Any, field: str, key: str) -> str | None:
    for row in rows or []:
        if key in str(row.get(field) or ""):
            return str(row["ID"])
    return None


def _error(method: str, resp: Response, rate_limit_wait_s: float) -> Exception:
    body = resp.body if isinstance(resp.body, dict) else {}
    code = str(body.get("error") or "")
    text = str(body.get("error_description") or "")
    what = f"Bitrix24 {method}: HTTP {resp.status} {code} {text}".strip()
    if resp.status == 503 and code == "QUERY_LIMIT_EXCEEDED":
        return CrmRateLimited(what, resp.retry_after(rate_limit_wait_s))
    if resp.status == 429 or code == "OPERATION_TIME_LIMIT":
        return CrmRateLimited(what, resp.retry_after(OPERATING_LIMIT_WAIT_S))
    if resp.status in (401, 403) or code in AUTH_ERRORS:
        return CrmAuthFailed(what)
    if resp.status >= 500 or not body:  # a proxy's HTML page, a 200 without a result...
        return CrmTransient(what if body else f"{what} (no JSON answer)", maybe_applied=True)
    return CrmRefused(what)
