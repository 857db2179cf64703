"""A strict fake of the Bitrix24 REST API behind an inbound webhook, over real HTTP.

``POST /rest/<user_id>/<token>/<method>.json`` with a JSON body (query parameters are read
too). Answers ``{"result": ..., "time": {...}}`` (lists also ``total`` and ``next``), errors
``{"error": ..., "error_description": ...}`` with the HTTP status Bitrix24 uses: 401
``INVALID_CREDENTIALS`` for a wrong token, 404 ``ERROR_METHOD_NOT_FOUND``, 400 for missing or
wrong fields, 503 ``QUERY_LIMIT_EXCEEDED`` when its leaky bucket (``bucket_size`` requests,
draining ``leak_per_s`` a second) overflows. Implements the methods the CRM sync uses:
``crm.duplicate.findbycomm``, ``crm.contact.list/add``, ``crm.timeline.comment.add/list``,
``crm.activity.todo.add``, ``crm.activity.list``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.crm_server import FakeCrmServer

USER_ID = 1
TOKEN = "k3x9fakewebhooktoken01"
PAGE = 50
ENTITY_TYPES = {"lead", "deal", "contact", "company", "order"}
CONTACT_TYPE_ID = 3


class BxError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def _digits(value: str) -> str:
    d = re.sub(r"\D", "", value)
    return "7" + d[1:] if len(d) == 11 and d.startswith("8") else d


@dataclass
class Refusal:
    method: str
    when: Callable[[dict[str, Any]], bool]
    error: str
    description: str


@dataclass
class Portal:
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    activities: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakeBitrix24(FakeCrmServer):
    def __init__(self, *, bucket_size: float = 50, leak_per_s: float = 2.0) -> None:
        super().__init__()
        self.portal = Portal()
        self.bucket_size = bucket_size
        self.leak_per_s = leak_per_s
        self._level = 0.0
        self._drained_at = time.monotonic()
        self.refusals: list[Refusal] = []

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/rest/{USER_ID}/{TOKEN}/"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/rest/{user}/{token}/{method}", self._handle)
        return app

    # -- test helpers ----------------------------------------------------------------------

    def add_contact(self, name: str, phones: tuple[str, ...] = (), **fields: Any) -> int:
        cid = self.portal.new_id()
        self.portal.contacts[cid] = {
            "ID": str(cid),
            "NAME": name,
            "PHONE": [
                {
                    "ID": str(self.portal.new_id()),
                    "VALUE_TYPE": "WORK",
                    "VALUE": p,
                    "TYPE_ID": "PHONE",
                }
                for p in phones
            ],
            **fields,
        }
        return cid

    def delete_contact(self, contact_id: int) -> None:
        del self.portal.contacts[contact_id]

    def refuse(
        self, method: str, when: Callable[[dict[str, Any]], bool], error: str, description: str
    ) -> None:
        """Answer HTTP 400 to ``method`` calls whose parameters match ``when``."""
        self.refusals.append(Refusal(method, when, error, description))

    def comments_of(self, contact_id: int) -> list[str]:
        return [
            c["COMMENT"]
            for c in self.portal.comments.values()
            if c["ENTITY_ID"] == str(contact_id)
        ]

    # -- the API -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"].removesuffix(".json")
        if request.match_info["user"] != str(USER_ID) or request.match_info["token"] != TOKEN:
            return await self._answer(
                method, 401, "INVALID_CREDENTIALS", "Invalid request credentials"
            )
        if not self._take_from_bucket():
            return await self._answer(method, 503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        injected = self.injected_failure(method)
        if injected is not None:
            return await self._answer(
                method, injected, "INTERNAL_SERVER_ERROR", "Internal server error"
            )
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            try:
                body = json.loads(await request.text() or "{}")
            except ValueError:
                return await self._answer(method, 400, "INVALID_REQUEST", "Invalid JSON")
            if not isinstance(body, dict):
                return await self._answer(method, 400, "INVALID_REQUEST", "Invalid parameters")
            params.update(body)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return await self._answer(method, 404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        for refusal in self.refusals:
            if refusal.method == method and refusal.when(params):
                return await self._answer(method, 400, refusal.error, refusal.description)
        started = time.time()
        try:
            result = handler(params)
        except BxError as err:
            return await self._answer(method, err.status, err.error, err.description)
        if await self.after_applying(method, request):
            return web.Response(status=204)  # never reaches the client: the socket is closed
        if isinstance(result, tuple):  # a list method: one page
            rows, total, next_start = result
            body_out = {"result": rows, "total": total, "time": _timing(started)}
            if next_start is not None:
                body_out["next"] = next_start
        else:
            body_out = {"result": result, "time": _timing(started)}
        await self.record(method, 200)
        return web.json_response(body_out)

    async def _answer(
        self, method: str, status: int, error: str, description: str
    ) -> web.Response:
        await self.record(method, status)
        return web.json_response({"error": error, "error_description": description}, status=status)

    def _take_from_bucket(self) -> bool:
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._drained_at) * self.leak_per_s)
        self._drained_at = now
        if self._level + 1 > self.bucket_size:
            return False
        self._level += 1
        return True

    # -- methods -----------------------------------------------------------------------------

    def _m_crm_duplicate_findbycomm(self, p: dict[str, Any]) -> Any:
        kind = p.get("type")
        values = p.get("values")
        if kind not in ("PHONE", "EMAIL"):
            raise BxError(400, "", "Parameter 'type' is not defined or invalid")
        if not isinstance(values, list) or not values or len(values) > 20:
            raise BxError(400, "", "Parameter 'values' must be an array of 1 to 20 items")
        wanted = {_digits(str(v)) for v in values if _digits(str(v))}
        found = sorted(
            int(c["ID"])
            for c in self.portal.contacts.values()
            if any(_digits(ph["VALUE"]) in wanted for ph in c.get("PHONE") or [])
        )[:20]
        if kind == "EMAIL" or not found:
            return []
        return {"CONTACT": found}

    def _m_crm_contact_list(self, p: dict[str, Any]) -> Any:
        flt = p.get("filter") or {}
        if not isinstance(flt, dict):
            raise BxError(400, "", "Invalid filter")
        rows = list(self.portal.contacts.values())
        for key, value in flt.items():
            if key == "ID":
                rows = [r for r in rows if r["ID"] == str(value)]
            elif key == "PHONE":  # multi-fields: exact match only
                rows = [
                    r
                    for r in rows
                    if any(ph["VALUE"] == str(value) for ph in r.get("PHONE") or [])
                ]
            elif key in ("ORIGINATOR_ID", "ORIGIN_ID", "NAME", "LAST_NAME"):
                rows = [r for r in rows if str(r.get(key) or "") == str(value)]
            else:
                raise BxError(400, "", f"Unsupported filter field {key}")
        return self._page(rows, p)

    def _m_crm_contact_add(self, p: dict[str, Any]) -> Any:
        fields = p.get("fields")
        if not isinstance(fields, dict):
            raise BxError(400, "", "Parameter 'fields' must be an array")
        if not (fields.get("NAME") or fields.get("LAST_NAME")):
            raise BxError(400, "", 'Required fields are empty: "Name" or "Last name"')
        phones = fields.get("PHONE") or []
        for phone in phones:
            if not isinstance(phone, dict) or not phone.get("VALUE"):
                raise BxError(400, "", "Invalid value of the field PHONE")
            if phone.get("VALUE_TYPE") not in (
                "WORK",
                "MOBILE",
                "FAX",
                "HOME",
                "PAGER",
                "MAILING",
                "OTHER",
            ):
                raise BxError(400, "", "Invalid VALUE_TYPE of the field PHONE")
        cid = self.portal.new_id()
        stored = {k: v for k, v in fields.items() if k != "PHONE"}
        stored["ID"] = str(cid)
        stored["PHONE"] = [
            {
                "ID": str(self.portal.new_id()),
                "VALUE_TYPE": ph["VALUE_TYPE"],
                "VALUE": ph["VALUE"],
                "TYPE_ID": "PHONE",
            }
            for ph in phones
        ]
        self.portal.contacts[cid] = stored
        return cid

    def _entity(self, entity_type: Any, entity_id: Any) -> None:
        if entity_type not in ENTITY_TYPES:
            raise BxError(400, "", "ENTITY_TYPE is not defined or invalid")
        if entity_type == "contact" and _int(entity_id) not in self.portal.contacts:
            raise BxError(400, "NOT_FOUND", "Element not found")

    def _m_crm_timeline_comment_add(self, p: dict[str, Any]) -> Any:
        fields = p.get("fields")  # only the lowercase key since crm 23.100.0
        if not isinstance(fields, dict):
            raise BxError(400, "", "Parameter 'fields' must be an array")
        if fields.get("ENTITY_ID") in (None, "") or not fields.get("ENTITY_TYPE"):
            raise BxError(400, "", "ENTITY_ID and ENTITY_TYPE are required")
        self._entity(fields["ENTITY_TYPE"], fields["ENTITY_ID"])
        if not str(fields.get("COMMENT") or "").strip():
            raise BxError(400, "", "Empty comment")
        cid = self.portal.new_id()
        self.portal.comments[cid] = {
            "ID": str(cid),
            "ENTITY_ID": str(fields["ENTITY_ID"]),
            "ENTITY_TYPE": fields["ENTITY_TYPE"],
            "COMMENT": fields["COMMENT"],
            "AUTHOR_ID": str(USER_ID),
            "CREATED": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return cid

    def _m_crm_timeline_comment_list(self, p: dict[str, Any]) -> Any:
        flt = p.get("filter") or {}
        if flt.get("ENTITY_ID") in (None, "") or not flt.get("ENTITY_TYPE"):
            raise BxError(400, "", "ENTITY_ID and ENTITY_TYPE are required in the filter")
        rows = [
            c
            for c in self.portal.comments.values()
            if c["ENTITY_ID"] == str(flt["ENTITY_ID"]) and c["ENTITY_TYPE"] == flt["ENTITY_TYPE"]
        ]
        return self._page(rows, p)

    def _m_crm_activity_todo_add(self, p: dict[str, Any]) -> Any:
        owner_type, owner = _int(p.get("ownerTypeId")), _int(p.get("ownerId"))
        if owner_type is None or owner is None:
            raise BxError(400, "", "ownerTypeId and ownerId are required")
        if owner_type == CONTACT_TYPE_ID and owner not in self.portal.contacts:
            raise BxError(400, "NOT_FOUND", "Owner element not found")
        deadline = p.get("deadline")
        try:
            parsed = datetime.fromisoformat(str(deadline))
        except ValueError:
            raise BxError(400, "", "Invalid deadline") from None
        if parsed.tzinfo is None:
            raise BxError(400, "", "deadline must carry a time zone")
        aid = self.portal.new_id()
        self.portal.activities[aid] = {
            "ID": str(aid),
            "OWNER_TYPE_ID": str(owner_type),
            "OWNER_ID": str(owner),
            "SUBJECT": p.get("title") or "",
            "DESCRIPTION": p.get("description") or "",
            "DEADLINE": parsed.isoformat(),
            "RESPONSIBLE_ID": str(p.get("responsibleId") or USER_ID),
        }
        return {"id": aid}

    def _m_crm_activity_list(self, p: dict[str, Any]) -> Any:
        flt = p.get("filter") or {}
        rows = list(self.portal.activities.values())
        for key in ("OWNER_TYPE_ID", "OWNER_ID"):
            if key in flt:
                rows = [r for r in rows if r[key] == str(flt[key])]
        return self._page(rows, p)

    def _page(
        self, rows: list[dict[str, Any]], p: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], int, int | None]:
        order = p.get("order") or {}
        reverse = str(order.get("ID", "ASC")).upper() == "DESC"
        rows = sorted(rows, key=lambda r: int(r["ID"]), reverse=reverse)
        start = _int(p.get("start")) or 0
        select = p.get("select")
        page = rows[start : start + PAGE]
        if isinstance(select, list) and select and "*" not in select:
            page = [{k: v for k, v in r.items() if k in select or k == "ID"} for r in page]
        next_start = start + PAGE if start + PAGE < len(rows) else None
        return page, len(rows), next_start


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _timing(started: float) -> dict[str, Any]:
    finished = time.time()
    return {
        "start": started,
        "finish": finished,
        "duration": finished - started,
        "processing": finished - started,
        "date_start": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "date_finish": datetime.fromtimestamp(finished, UTC).isoformat(timespec="seconds"),
    }
