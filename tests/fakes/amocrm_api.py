"""A strict fake of amoCRM API v4 and its OAuth 2 token endpoint, over real HTTP.

``Authorization: Bearer <access token>`` on every ``/api/v4`` request (401 problem+json when
missing, unknown or expired). ``POST /oauth2/access_token`` with ``grant_type=refresh_token``
checks client id, secret and redirect URI, hands out a new access token *and* a new refresh
token, and revokes the refresh token it was given (amoCRM's rotation). A sliding one-second
window allows ``rate_limit`` requests (7 like amoCRM), then 429. Lists that come out empty, and
an entity that does not exist, answer 204 with no body. Errors are
``application/problem+json`` with ``title``, ``type``, ``status``, ``detail`` and, for bad
input, ``validation-errors``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.crm_server import FakeCrmServer

CLIENT_ID = "5b0a2e7c-1d3f-4c4a-9f0e-2b6d8a7c1e11"
CLIENT_SECRET = "fakeClientSecretForTestsOnly0123456789abcdef"
REDIRECT_URI = "https://povtor.example/oauth/amocrm"
PHONE_ENUMS = {"WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER"}
EMAIL_ENUMS = {"WORK", "PRIV", "OTHER"}
NOTE_TYPES = {"common", "call_in", "call_out", "service_message", "sms_in", "sms_out"}
HAL = "application/hal+json"
PROBLEM = "application/problem+json"
_IDS = re.compile(r"/\d+")


def _digits(value: str) -> str:
    d = re.sub(r"\D", "", value)
    return "7" + d[1:] if len(d) == 11 and d.startswith("8") else d


class Problem(Exception):
    def __init__(
        self, status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors


def _invalid(path: str, code: str, detail: str, request_id: str = "0") -> Problem:
    return Problem(
        400,
        "Bad Request",
        "Request validation failed",
        [{"request_id": request_id, "errors": [{"code": code, "path": path, "detail": detail}]}],
    )


@dataclass
class Account:
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakeAmoCrm(FakeCrmServer):
    def __init__(self, *, rate_limit: int = 7, token_lifetime_s: int = 86400) -> None:
        super().__init__()
        self.account = Account()
        self.rate_limit = rate_limit
        self.token_lifetime_s = token_lifetime_s
        self.access_tokens: dict[str, float] = {}  # token -> expires (time.monotonic)
        self.refresh_tokens: set[str] = set()  # the valid ones (one per grant)
        self.revoked: set[str] = set()
        self.refreshes = 0
        self._window: deque[float] = deque()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth2/access_token", self._token)
        app.router.add_route("*", "/api/v4/{path:.+}", self._api)
        return app

    # -- test helpers ----------------------------------------------------------------------

    def grant(self) -> tuple[str, str]:
        """An authorisation as the admin would do it: (access token, refresh token)."""
        access, refresh = self._issue()
        return access, refresh

    def long_lived_token(self) -> str:
        token = "ll." + secrets.token_urlsafe(24)
        self.access_tokens[token] = time.monotonic() + 5 * 365 * 86400
        return token

    def expire_access_tokens(self) -> None:
        for token in self.access_tokens:
            self.access_tokens[token] = 0.0

    def add_contact(self, name: str, phones: tuple[str, ...] = ()) -> int:
        cid = self.account.new_id()
        self.account.contacts[cid] = self._contact(cid, {"name": name}, phones)
        return cid

    def delete_contact(self, contact_id: int) -> None:
        del self.account.contacts[contact_id]

    def notes_of(self, contact_id: int) -> list[str]:
        return [
            n["params"]["text"]
            for n in self.account.notes.values()
            if n["entity_id"] == contact_id
        ]

    # -- OAuth -----------------------------------------------------------------------------

    def _issue(self) -> tuple[str, str]:
        access = "at." + secrets.token_urlsafe(24)
        refresh = "rt." + secrets.token_urlsafe(24)
        self.access_tokens[access] = time.monotonic() + self.token_lifetime_s
        self.refresh_tokens.add(refresh)
        return access, refresh

    async def _token(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return await self._problem(
                "POST /oauth2/access_token", Problem(400, "Bad Request", "JSON expected")
            )
        what = "POST /oauth2/access_token"
        if (
            body.get("client_id") != CLIENT_ID
            or body.get("client_secret") != CLIENT_SECRET
            or body.get("redirect_uri") != REDIRECT_URI
        ):
            return await self._problem(
                what, Problem(401, "Unauthorized", "Client authentication failed")
            )
        if body.get("grant_type") != "refresh_token":
            return await self._problem(what, Problem(400, "Bad Request", "Unsupported grant type"))
        token = body.get("refresh_token")
        if token not in self.refresh_tokens:
            hint = (
                "Token has been revoked"
                if token in self.revoked
                else "Cannot decrypt the refresh token"
            )
            problem = Problem(400, "Bad Request", "The refresh token is invalid.")
            await self.record(what, 400)
            return web.json_response(
                {
                    "hint": hint,
                    "title": problem.title,
                    "type": "https://httpstatus.es/400",
                    "status": 400,
                    "detail": problem.detail,
                },
                status=400,
                content_type=PROBLEM,
            )
        injected = self.injected_failure(what)
        if injected is not None:
            return await self._problem(
                what, Problem(injected, "Internal Server Error", "Internal error")
            )
        self.refresh_tokens.discard(token)
        self.revoked.add(token)
        access, refresh = self._issue()
        self.refreshes += 1
        await self.record(what, 200)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime_s,
                "access_token": access,
                "refresh_token": refresh,
            }
        )

    # -- API -------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        what = f"{request.method} {_IDS.sub('/{id}', path)}"
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        expires = self.access_tokens.get(token or "")
        if expires is None or expires <= time.monotonic():
            return await self._problem(what, Problem(401, "Unauthorized", "Unauthorized"))
        if not self._within_rate():
            return await self._problem(
                what, Problem(429, "Too Many Requests", "Too Many Requests")
            )
        injected = self.injected_failure(what)
        if injected is not None:
            return await self._problem(
                what, Problem(injected, "Internal Server Error", "Internal error")
            )
        body: Any = None
        if request.method == "POST":
            if request.content_type != "application/json":
                return await self._problem(
                    what, Problem(415, "Unsupported Media Type", "JSON expected")
                )
            try:
                body = json.loads(await request.text())
            except ValueError:
                return await self._problem(what, Problem(400, "Bad Request", "Invalid JSON"))
        try:
            result = self._route(request.method, path, request.query, body)
        except Problem as problem:
            return await self._problem(what, problem)
        if await self.after_applying(what, request):
            return web.Response(status=204)  # never reaches the client: the socket is closed
        if result is None:
            await self.record(what, 204)
            return web.Response(status=204)
        await self.record(what, 200)
        return web.json_response(result, content_type=HAL)

    async def _problem(self, what: str, problem: Problem) -> web.Response:
        await self.record(what, problem.status)
        payload: dict[str, Any] = {
            "title": problem.title,
            "type": f"https://httpstatus.es/{problem.status}",
            "status": problem.status,
            "detail": problem.detail,
        }
        if problem.errors:
            payload["validation-errors"] = problem.errors
        return web.json_response(payload, status=problem.status, content_type=PROBLEM)

    def _within_rate(self) -> bool:
        now = time.monotonic()
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit:
            return False
        self._window.append(now)
        return True

    def _route(self, method: str, path: str, query: Any, body: Any) -> Any:
        parts = path.strip("/").split("/")
        match method, parts:
            case "GET", ["contacts"]:
                return self._list_contacts(query)
            case "GET", ["contacts", cid] if cid.isdigit():
                contact = self.account.contacts.get(int(cid))
                return None if contact is None else contact
            case "POST", ["contacts"]:
                return self._add_contacts(body)
            case "POST", ["contacts", "notes"]:
                return self._add_notes(body)
            case "GET", ["contacts", cid, "notes"] if cid.isdigit():
                return self._list_notes(int(cid), query)
            case "POST", ["tasks"]:
                return self._add_tasks(body)
            case "GET", ["tasks"]:
                return self._list_tasks(query)
        raise Problem(404, "Not Found", f"Unknown resource {method} {path}")

    def _embedded(self, name: str, items: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not items:
            return None
        return {
            "_page": 1,
            "_links": {"self": {"href": f"/api/v4/{name}"}},
            "_embedded": {name: items},
        }

    def _page(self, rows: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
        limit = int(query.get("limit", "50"))
        page = int(query.get("page", "1"))
        if not 1 <= limit <= 250:
            raise _invalid("limit", "InvalidValue", "limit must be 1..250")
        if page < 1:
            raise _invalid("page", "InvalidValue", "page must be 1 or more")
        return rows[(page - 1) * limit : page * limit]

    def _list_contacts(self, query: Any) -> Any:
        text = str(query.get("query", "")).strip().lower()
        rows = list(self.account.contacts.values())
        if text:
            digits = _digits(text)

            def matches(c: dict[str, Any]) -> bool:
                if text in c["name"].lower():
                    return True
                for f in c.get("custom_fields_values") or []:
                    for v in f["values"]:
                        value = str(v["value"])
                        if text in value.lower() or (
                            len(digits) >= 5 and digits in _digits(value)
                        ):
                            return True
                return False

            rows = [c for c in rows if matches(c)]
        return self._embedded("contacts", self._page(rows, query))

    def _contact(
        self, cid: int, item: dict[str, Any], phones: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        fields = list(item.get("custom_fields_values") or [])
        if phones:
            fields.append(
                {
                    "field_code": "PHONE",
                    "values": [{"value": p, "enum_code": "WORK"} for p in phones],
                }
            )
        stored_fields = [
            {
                "field_id": 100 + i,
                "field_name": {"PHONE": "Телефон", "EMAIL": "Email"}[f["field_code"]],
                "field_code": f["field_code"],
                "field_type": "multitext",
                "values": [
                    {"value": v["value"], "enum_code": v["enum_code"], "enum_id": 500 + j}
                    for j, v in enumerate(f["values"])
                ],
            }
            for i, f in enumerate(fields)
        ]
        return {
            "id": cid,
            "name": item.get("name")
            or " ".join(x for x in (item.get("last_name"), item.get("first_name")) if x),
            "first_name": item.get("first_name", ""),
            "last_name": item.get("last_name", ""),
            "responsible_user_id": item.get("responsible_user_id", 1),
            "custom_fields_values": stored_fields or None,
            "_links": {"self": {"href": f"/api/v4/contacts/{cid}"}},
        }

    def _array(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list) or not body or not all(isinstance(i, dict) for i in body):
            raise _invalid("", "InvalidType", "An array of objects is expected")
        if len(body) > 250:
            raise _invalid("", "TooMany", "At most 250 items at once")
        return body

    def _add_contacts(self, body: Any) -> Any:
        created = []
        for n, item in enumerate(self._array(body)):
            rid = str(n)
            for i, f in enumerate(item.get("custom_fields_values") or []):
                code = f.get("field_code")
                enums = {"PHONE": PHONE_ENUMS, "EMAIL": EMAIL_ENUMS}.get(code)
                if enums is None:
                    raise _invalid(
                        f"custom_fields_values.{i}.field_code",
                        "NotSupportedChoice",
                        "Unknown field",
                        rid,
                    )
                for j, v in enumerate(f.get("values") or []):
                    if not v.get("value"):
                        raise _invalid(
                            f"custom_fields_values.{i}.values.{j}.value",
                            "NotBlank",
                            "Value is empty",
                            rid,
                        )
                    if v.get("enum_code") not in enums:
                        raise _invalid(
                            f"custom_fields_values.{i}.values.{j}.enum_code",
                            "NotSupportedChoice",
                            "Unknown enum",
                            rid,
                        )
            cid = self.account.new_id()
            self.account.contacts[cid] = self._contact(cid, item)
            created.append(
                {
                    "id": cid,
                    "request_id": rid,
                    "is_deleted": False,
                    "is_unsorted": False,
                    "_links": {"self": {"href": f"/api/v4/contacts/{cid}"}},
                }
            )
        return {
            "_links": {"self": {"href": "/api/v4/contacts"}},
            "_embedded": {"contacts": created},
        }

    def _add_notes(self, body: Any) -> Any:
        created = []
        for n, item in enumerate(self._array(body)):
            rid = str(n)
            entity_id = item.get("entity_id")
            if not isinstance(entity_id, int):
                raise _invalid("entity_id", "InvalidType", "entity_id must be an integer", rid)
            if entity_id not in self.account.contacts:
                raise _invalid("entity_id", "NotFound", "Entity not found", rid)
            if item.get("note_type") not in NOTE_TYPES:
                raise _invalid(
                    "note_type",
                    "NotSupportedChoice",
                    "The value you selected is not a valid choice.",
                    rid,
                )
            text = (item.get("params") or {}).get("text")
            if item["note_type"] == "common" and not str(text or "").strip():
                raise _invalid("params.text", "NotBlank", "This value should not be blank.", rid)
            nid = self.account.new_id()
            self.account.notes[nid] = {
                "id": nid,
                "entity_id": entity_id,
                "note_type": item["note_type"],
                "params": {"text": text},
            }
            created.append(
                {
                    "id": nid,
                    "entity_id": entity_id,
                    "request_id": rid,
                    "_links": {"self": {"href": f"/api/v4/contacts/{entity_id}/notes/{nid}"}},
                }
            )
        return {
            "_links": {"self": {"href": "/api/v4/contacts/notes"}},
            "_embedded": {"notes": created},
        }

    def _list_notes(self, contact_id: int, query: Any) -> Any:
        if contact_id not in self.account.contacts:
            return None
        rows = [n for n in self.account.notes.values() if n["entity_id"] == contact_id]
        note_type = query.get("filter[note_type]")
        if note_type:
            rows = [n for n in rows if n["note_type"] == note_type]
        rows.sort(key=lambda n: n["id"], reverse=query.get("order[id]") == "desc")
        return self._embedded("notes", self._page(rows, query))

    def _add_tasks(self, body: Any) -> Any:
        created = []
        for n, item in enumerate(self._array(body)):
            rid = str(n)
            if not str(item.get("text") or "").strip():
                raise _invalid("text", "NotBlank", "This value should not be blank.", rid)
            if not isinstance(item.get("complete_till"), int):
                raise _invalid(
                    "complete_till", "InvalidType", "complete_till must be a Unix timestamp", rid
                )
            if item.get("entity_type") not in (
                "leads",
                "contacts",
                "companies",
                "customers",
                None,
            ):
                raise _invalid("entity_type", "NotSupportedChoice", "Unknown entity type", rid)
            if (
                item.get("entity_type") == "contacts"
                and item.get("entity_id") not in self.account.contacts
            ):
                raise _invalid("entity_id", "NotFound", "Entity not found", rid)
            tid = self.account.new_id()
            self.account.tasks[tid] = {
                "id": tid,
                "text": item["text"],
                "complete_till": item["complete_till"],
                "entity_id": item.get("entity_id"),
                "entity_type": item.get("entity_type"),
                "task_type_id": item.get("task_type_id", 1),
                "is_completed": False,
            }
            created.append(
                {
                    "id": tid,
                    "request_id": rid,
                    "_links": {"self": {"href": f"/api/v4/tasks/{tid}"}},
                }
            )
        return {"_links": {"self": {"href": "/api/v4/tasks"}}, "_embedded": {"tasks": created}}

    def _list_tasks(self, query: Any) -> Any:
        rows = list(self.account.tasks.values())
        entity_type = query.get("filter[entity_type]")
        entity_ids = query.getall("filter[entity_id]", []) + query.getall(
            "filter[entity_id][]", []
        )
        if entity_type:
            rows = [t for t in rows if t["entity_type"] == entity_type]
        if entity_ids:
            wanted = {int(i) for i in entity_ids}
            rows = [t for t in rows if t["entity_id"] in wanted]
        rows.sort(key=lambda t: t["id"], reverse=query.get("order[id]") == "desc")
        return self._embedded("tasks", self._page(rows, query))
