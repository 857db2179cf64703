"""amoCRM API v4 (``https://<subdomain>.amocrm.ru/api/v4/...``) with a bearer token.

Contacts are searched with ``GET /api/v4/contacts?query=`` (the number's last ten digits) and
the phones of what comes back are compared digit by digit; each event becomes a "common" note
(``POST /api/v4/contacts/notes``), tasks ``POST /api/v4/tasks``. Empty lists answer 204,
the rate limit (7 requests a second) 429, an expired token 401 (refreshed once, then retried).
Errors are ``application/problem+json`` (``title``, ``detail``, ``validation-errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_sync.connectors.amocrm_auth import AmoAuth
from crm_sync.connectors.errors import (
    CrmAuthFailed,
    CrmRateLimited,
    CrmRefused,
    CrmTransient,
)
from crm_sync.connectors.http import CrmHttp, Response
from crm_sync.connectors.names import person_name
from crm_sync.connectors.phones import phone_digits, same_number
from povtor.domain import Client
from povtor.ports import CrmNote, CrmTask

CALL_TASK_TYPE = 1  # amoCRM's built-in task type "Связаться"
RATE_LIMIT_WAIT_S = 1.0
RATE_LIMIT_RETRIES = 4
MAX_INLINE_WAIT_S = 20.0
PAGE = 250  # amoCRM's largest page
LOOKUP_PAGES = 20  # a lookup reads at most this many pages of a contact's notes or tasks
MAX_NOTE = 15000  # amoCRM truncates long note texts; keep the key inside what is stored


def base_url(subdomain: str | None, explicit: str | None) -> str:
    if explicit:
        return explicit.rstrip("/")
    if not subdomain:
        raise ValueError("amoCRM needs POVTOR_CRM_AMOCRM_SUBDOMAIN or POVTOR_CRM_AMOCRM_BASE_URL")
    return f"https://{subdomain}.amocrm.ru"


class AmoCrm:
    name = "amocrm"

    def __init__(
        self,
        base: str,
        http: CrmHttp,
        auth: AmoAuth,
        *,
        responsible_user_id: int | None = None,
        rate_limit_wait_s: float = RATE_LIMIT_WAIT_S,
    ) -> None:
        self._api = base.rstrip("/") + "/api/v4"
        self._http = http
        self._auth = auth
        self._responsible = responsible_user_id
        self._rate_limit_wait_s = rate_limit_wait_s

    @property
    def endpoint(self) -> str:
        """The API root requests go to."""
        return self._api

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One API request: the parsed answer, None for 204. A 401 refreshes the token once;
        a 429 holds every request back and is retried here (nothing was applied)."""
        refreshed = False
        attempt = 0
        while True:
            token = await self._auth.token()
            resp = await self._http.request(
                method,
                self._api + path,
                json_body=body,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
            if resp.status in (200, 201, 202):
                return resp.body
            if resp.status == 204:
                return None
            if resp.status == 401 and not refreshed:
                refreshed = True
                if await self._auth.rejected(token):
                    continue
            err = _error(f"{method} {path}", resp, self._rate_limit_wait_s)
            if not isinstance(err, CrmRateLimited):
                raise err
            pause = err.retry_after * 2**attempt
            self._http.limiter.pause(pause)
            if pause > MAX_INLINE_WAIT_S or attempt == RATE_LIMIT_RETRIES:
                raise err
            attempt += 1

    # -- contacts ------------------------------------------------------------------------------

    async def find_contact(self, client: Client) -> str | None:
        found: list[int] = []
        for phone in client.phones:
            digits = phone_digits(phone)
            query = digits[-10:] if len(digits) > 10 else digits
            answer = await self.call("GET", "/contacts", params={"query": query, "limit": "50"})
            for contact in _embedded(answer, "contacts"):
                if any(same_number(p, phone) for p in _phones(contact)):
                    found.append(int(contact["id"]))
            if found:
                break
        return str(min(found)) if found else None

    async def contact_exists(self, contact_id: str) -> bool:
        if not contact_id.isdigit():
            return False
        try:
            answer = await self.call("GET", f"/contacts/{contact_id}")
        except CrmRefused:  # 404 from some proxies; amoCRM itself answers 204
            return False
        return isinstance(answer, dict) and answer.get("id") is not None

    async def create_contact(self, client: Client) -> str:
        name = person_name(client)
        contact: dict[str, Any] = {"name": name.full, "first_name": name.first}
        if name.last:
            contact["last_name"] = name.last
        fields: list[dict[str, Any]] = []
        if client.phones:
            fields.append(
                {
                    "field_code": "PHONE",
                    "values": [{"value": p, "enum_code": "MOB"} for p in client.phones],
                }
            )
        if client.email:
            fields.append(
                {"field_code": "EMAIL", "values": [{"value": client.email, "enum_code": "WORK"}]}
            )
        if fields:
            contact["custom_fields_values"] = fields
        if self._responsible is not None:
            contact["responsible_user_id"] = self._responsible
        answer = await self.call("POST", "/contacts", body=[contact])
        return _first_id(answer, "contacts")

    # -- notes and tasks -----------------------------------------------------------------------

    async def add_note(self, contact_id: str, note: CrmNote) -> str:
        answer = await self.call(
            "POST",
            "/contacts/notes",
            body=[
                {
                    "entity_id": int(contact_id),
                    "note_type": "common",
                    "params": {"text": note.text[-MAX_NOTE:]},
                }
            ],
        )
        return _first_id(answer, "notes")

    async def find_note(self, contact_id: str, key: str) -> str | None:
        return await self._find(
            f"/contacts/{int(contact_id)}/notes",
            {"filter[note_type]": "common", "order[id]": "desc"},
            "notes",
            lambda note: key in str((note.get("params") or {}).get("text") or ""),
        )

    async def add_task(self, contact_id: str, task: CrmTask) -> str:
        item: dict[str, Any] = {
            "text": f"{task.title}\n{task.text}"[-MAX_NOTE:],
            "complete_till": int(task.due_at.timestamp()),
            "entity_id": int(contact_id),
            "entity_type": "contacts",
            "task_type_id": CALL_TASK_TYPE,
        }
        if self._responsible is not None:
            item["responsible_user_id"] = self._responsible
        answer = await self.call("POST", "/tasks", body=[item])
        return _first_id(answer, "tasks")

    async def find_task(self, contact_id: str, key: str) -> str | None:
        return await self._find(
            "/tasks",
            {
                "filter[entity_type]": "contacts",
                "filter[entity_id]": str(int(contact_id)),
                "order[id]": "desc",
            },
            "tasks",
            lambda task: key in str(task.get("text") or ""),
        )

    async def _find(
        self,
        path: str,
        params: dict[str, str],
        name: str,
        match: Callable[[dict[str, Any]], bool],
    ) -> str | None:
        """Walk the pages of a list (newest first where amoCRM sorts so) for one item."""
        for page in range(1, LOOKUP_PAGES + 1):
            answer = await self.call(
                "GET", path, params={**params, "page": str(page), "limit": str(PAGE)}
            )
            items = _embedded(answer, name)
            for item in items:
                if match(item):
                    return str(item["id"])
            if len(items) < PAGE:
                return None
        return None

    async def aclose(self) -> None:
        await self._http.aclose()


def _embedded(answer: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(answer, dict):
        return []
    items = (answer.get("_embedded") or {}).get(name) or []
    return [i for i in items if isinstance(i, dict)]


def _first_id(answer: Any, name: str) -> str:
    items = _embedded(answer, name)
    if not items or items[0].get("id") is None:
        raise CrmTransient(f"amoCRM: no {name} id in the answer", maybe_applied=True)
    return str(int(items[0]["id"]))


def _phones(contact: dict[str, Any]) -> list[str]:
    found = []
    for field in contact.get("custom_fields_values") or []:
        if field.get("field_code") == "PHONE":
            found += [str(v.get("value") or "") for v in field.get("values") or []]
    return found


def _error(what: str, resp: Response, rate_limit_wait_s: float) -> Exception:
    body = resp.body if isinstance(resp.body, dict) else {}
    title = str(body.get("title") or "")
    detail = str(body.get("detail") or "")
    message = f"amoCRM {what}: HTTP {resp.status} {title} {detail}".strip()
    problems = _validation(body)
    if problems:
        message += f" ({problems})"
    if resp.status == 429:
        return CrmRateLimited(message, resp.retry_after(rate_limit_wait_s))
    if resp.status in (401, 402, 403):  # token, unpaid account, IP or rights: an operator acts
        return CrmAuthFailed(message)
    if resp.status >= 500 or resp.status < 400:
        return CrmTransient(message, maybe_applied=True)
    return CrmRefused(message)


def _validation(body: dict[str, Any]) -> str:
    """``validation-errors`` as 'path: code' pairs (values are left out: they may be personal)."""
    parts = []
    for item in body.get("validation-errors") or []:
        for err in item.get("errors") or []:
            parts.append(f"{err.get('path', '?')}: {err.get('code', '?')}")
    return "; ".join(parts[:5])
