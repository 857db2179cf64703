"""A small, strict emulator of the Telegram Bot API over real HTTP (aiohttp), on loopback.

The demo's Telegram and the tests' one. It speaks the wire format aiogram uses (multipart form
data, also JSON and query strings), holds chats, messages, callback queries and an update
queue, long-polls for real (``timeout``, ``offset``, woken by new updates), delivers webhooks
with the secret header, and can be told to answer 429 (with ``retry_after``), 403 (blocked
chats) and 5xx; like Telegram, it answers 401 to any other token and 409 to a ``getUpdates``
while another one is still waiting. The simulated user side lives in
``app.sandbox.telegram_user``; a page to be one of the users in ``app.sandbox.page``. What it
does not know (parse modes, inline messages, unknown methods) is refused the way Telegram
would, so a bot that works against it does not lean on leniency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from povtor.lifecycle import listen

BOT_ID = 7000001
BOT_USERNAME = "povtor_sandbox_bot"
TOKEN = f"{BOT_ID}:AAHsandboxTokenNotTelegram_0123456789"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


@dataclass
class Sent:
    """A message the bot sent (and its current state after edits)."""

    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None
    received_at: float  # time.monotonic() when the request arrived
    edits: int = 0


@dataclass
class Failure:
    status: int
    methods: frozenset[str] | None  # None = any method except getUpdates
    retry_after: int | None = None
    html: bool = False


@dataclass
class Chat:
    id: int
    first_name: str
    username: str | None = None
    blocked: bool = False
    next_cursor: int = 0  # index into messages seen by the simulated user


@dataclass
class Webhook:
    url: str
    secret: str | None
    statuses: list[int] = field(default_factory=list)


def _bot_user() -> dict[str, Any]:
    return {
        "id": BOT_ID,
        "is_bot": True,
        "first_name": "Povtor",
        "username": BOT_USERNAME,
        "can_join_groups": False,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


class BotApiEmulator:
    """One bot's Bot API server; ``start()`` listens on loopback and returns the base URL."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.chats: dict[int, Chat] = {}
        self.sent: list[Sent] = []
        self.messages: dict[tuple[int, int], Sent] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.callback_answers: dict[str, dict[str, Any] | None] = {}
        self.files: dict[str, bytes] = {}
        self.webhook: Webhook | None = None
        self.failures: list[Failure] = []
        self.refused: list[tuple[str, int]] = []  # (method, status) of injected failures
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 100_000
        self._next_message_id = 1
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._hook_task: asyncio.Task[None] | None = None
        self.base_url = ""
        self._closing = False
        self.answered_count = 0
        self.unauthorized = 0  # requests refused for a wrong token
        self.conflicts = 0  # getUpdates refused because another one was waiting
        self.polls = 0  # getUpdates served
        self._polling: list[web.Request] = []  # getUpdates requests waiting now

    # -- lifecycle ---------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """The Bot API's routes, on an application that may serve more (the sandbox page)."""
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    async def start(self, app: web.Application | None = None, port: int = 0) -> str:
        """Listen on 127.0.0.1 (never another address: it stands in for Telegram locally)."""
        if app is None:
            app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        bound = await listen(self._runner, "127.0.0.1", port)
        self.base_url = f"http://127.0.0.1:{bound}"
        return self.base_url

    async def stop(self) -> None:
        self._closing = True
        await self._notify()  # long polls in progress return at once
        if self._hook_task is not None:
            self._hook_task.cancel()
            await asyncio.gather(self._hook_task, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    # -- switches for tests --------------------------------------------------------------------

    def add_chat(self, chat_id: int, first_name: str = "Клиент") -> Chat:
        return self.chats.setdefault(chat_id, Chat(chat_id, first_name))

    def block(self, chat_id: int) -> None:
        self.chats[chat_id].blocked = True

    def fail_next(
        self,
        count: int,
        status: int,
        *,
        methods: set[str] | None = None,
        retry_after: int | None = None,
        html: bool | None = None,
    ) -> None:
        """The next ``count`` matching calls fail (429 with retry_after, 5xx...; status 0 drops
        the connection without an answer)."""
        html = status == 502 if html is None else html
        frozen = frozenset(methods) if methods else None
        self.failures.extend(Failure(status, frozen, retry_after, html) for _ in range(count))

    # -- waiting for the bot -------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until ``predicate()`` is true (checked after every change), or fail."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), within)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- the user side pushes updates here -----------------------------------------------------

    async def push_update(self, body: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id, **body})
        await self._notify()
        return update_id

    def waiting_polls(self) -> int:
        """getUpdates requests waiting now (their callers still connected)."""
        return sum(_connected(r) for r in self._polling)

    def pending_updates(self) -> int:
        return len(self._updates)

    def new_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id

    # -- HTTP --------------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, str):
                        params[key] = value
                    elif isinstance(value, bytes | bytearray):
                        params[key] = bytes(value)
                    else:
                        params[key] = value.file.read()
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            self.unauthorized += 1
            await self._notify()
            return _error(ApiError(401, "Unauthorized"))
        params = await self._params(request)
        self.calls.append((method, params))
        if method == "getUpdates":
            return await self._get_updates(request, params)
        failure = self._take_failure(method)
        if failure is not None:
            self.refused.append((method, failure.status))
            if failure.status == 0:  # the connection drops before any answer
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)
            if failure.html:
                return web.Response(
                    status=failure.status,
                    text=f"<html><body><h1>{failure.status} Bad Gateway</h1></body></html>",
                    content_type="text/html",
                )
            description = f"Too Many Requests: retry after {failure.retry_after}"
            if failure.status != 429:
                description = "Internal Server Error"
            return _error(ApiError(failure.status, description, failure.retry_after))
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            return _error(ApiError(404, "Not Found: method not found"))
        try:
            result = await handler(params)
        except ApiError as err:
            return _error(err)
        return web.json_response({"ok": True, "result": result})

    async def _get_updates(self, request: web.Request, params: dict[str, Any]) -> web.Response:
        # a caller that went away (its connection closed) no longer counts as waiting
        self._polling = [r for r in self._polling if _connected(r)]
        if self._polling:
            self.conflicts += 1
            await self._notify()
            return _error(
                ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
            )
        self._polling.append(request)
        await self._notify()
        try:
            result = await self._m_getupdates(params)
        except ApiError as err:
            return _error(err)
        finally:
            self._polling = [r for r in self._polling if r is not request]
        self.polls += 1
        return web.json_response({"ok": True, "result": result})

    def _take_failure(self, method: str) -> Failure | None:
        if method == "getUpdates":
            return None
        for i, failure in enumerate(self.failures):
            if failure.methods is None or method in failure.methods:
                return self.failures.pop(i)
        return None

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["path"])
        if request.match_info["token"] != self.token or data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    # -- methods -----------------------------------------------------------------------------

    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return _bot_user()

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _int(params, "offset", 0)
        limit = min(max(_int(params, "limit", 100), 1), 100)
        timeout = _int(params, "timeout", 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    ready = lambda: bool(self._updates) or self._closing  # noqa: E731
                    await asyncio.wait_for(self._changed.wait_for(ready), timeout)
        return self._updates[:limit]

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        url = _required(params, "url")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.match(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = Webhook(url, secret)
        if self._hook_task is None:
            self._hook_task = asyncio.create_task(self._deliver_webhooks())
        await self._notify()
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            self._updates.clear()
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        return {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _chat_for(self, params: dict[str, Any]) -> Chat:
        chat_id = _int(params, "chat_id")
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _message_json(self, sent: Sent) -> dict[str, Any]:
        chat = self.chats[sent.chat_id]
        body: dict[str, Any] = {
            "message_id": sent.message_id,
            "from": _bot_user(),
            "chat": {"id": chat.id, "type": "private", "first_name": chat.first_name},
            "date": int(time.time()),
            "text": sent.text,
        }
        if sent.reply_markup and "inline_keyboard" in sent.reply_markup:
            body["reply_markup"] = sent.reply_markup
        if sent.edits:
            body["edit_date"] = int(time.time())
        return body

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        received = time.monotonic()
        text = _text(params)
        markup = _markup(params)
        chat = self._chat_for(params)
        sent = Sent(chat.id, self.new_message_id(), text, markup, received)
        self.sent.append(sent)
        self.messages[(chat.id, sent.message_id)] = sent
        await self._notify()
        return self._message_json(sent)

    def _editable(self, params: dict[str, Any]) -> Sent:
        if "inline_message_id" in params:
            raise ApiError(400, "Bad Request: inline messages are not used by this bot")
        chat = self._chat_for(params)
        sent = self.messages.get((chat.id, _int(params, "message_id")))
        if sent is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return sent

    async def _m_editmessagetext(self, params: dict[str, Any]) -> Any:
        text = _text(params)
        markup = _markup(params)
        sent = self._editable(params)
        if text == sent.text and markup == _inline_only(sent.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        sent.text, sent.reply_markup = text, markup
        sent.edits += 1
        await self._notify()
        return self._message_json(sent)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        markup = _markup(params)
        sent = self._editable(params)
        if markup == _inline_only(sent.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        sent.reply_markup = markup
        sent.edits += 1
        await self._notify()
        return self._message_json(sent)

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> Any:
        query_id = _required(params, "callback_query_id")
        if query_id not in self.callback_answers or self.callback_answers[query_id] is not None:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is "
                "invalid",
            )
        text = params.get("text")
        if text is not None and len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers[query_id] = {"text": text}
        self.answered_count += 1
        await self._notify()
        return True

    async def _m_getfile(self, params: dict[str, Any]) -> Any:
        file_id = _required(params, "file_id")
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(self.files[file_id]),
            "file_path": file_id,
        }

    async def _m_setmycommands(self, params: dict[str, Any]) -> Any:
        _required(params, "commands")
        return True

    # -- webhook delivery --------------------------------------------------------------------

    async def _deliver_webhooks(self) -> None:
        """Push queued updates to the webhook in order; a non-2xx answer is retried."""
        async with ClientSession(timeout=ClientTimeout(total=10)) as http:
            while True:
                async with self._changed:
                    await self._changed.wait_for(
                        lambda: self.webhook is not None and bool(self._updates)
                    )
                hook = self.webhook
                if hook is None or not self._updates:
                    continue
                update = self._updates[0]
                headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret} if hook.secret else {}
                try:
                    async with http.post(hook.url, json=update, headers=headers) as response:
                        hook.statuses.append(response.status)
                        ok = 200 <= response.status < 300
                except OSError:
                    hook.statuses.append(0)
                    ok = False
                if ok and self._updates and self._updates[0] is update:
                    self._updates.pop(0)
                elif not ok:
                    await asyncio.sleep(0.05)  # Telegram backs off too; keeps the loop polite
                await self._notify()


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _error(err: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": err.status, "description": err.description}
    if err.retry_after is not None:
        body["parameters"] = {"retry_after": err.retry_after}
    return web.json_response(body, status=err.status)


def _required(params: dict[str, Any], name: str) -> Any:
    if name not in params or params[name] in ("", None):
        raise ApiError(400, f'Bad Request: parameter "{name}" is required')
    return params[name]


def _int(params: dict[str, Any], name: str, default: int | None = None) -> int:
    if name not in params and default is not None:
        return default
    value = _required(params, name)
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise ApiError(400, f"Bad Request: invalid {name}") from err


def _text(params: dict[str, Any]) -> str:
    text = str(params.get("text", ""))
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if len(text) > MAX_TEXT:
        raise ApiError(400, "Bad Request: message is too long")
    if params.get("parse_mode"):
        raise ApiError(400, "Bad Request: this fake accepts plain text only")
    return text


def _inline_only(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    return markup if markup and "inline_keyboard" in markup else None


def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
    raw = params.get("reply_markup")
    if raw is None:
        return None
    markup = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        for row in markup["inline_keyboard"]:
            for button in row:
                if not button.get("text"):
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is None and "url" not in button:
                    raise ApiError(400, 'Bad Request: can\'t find field "callback_data"')
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup
    if "keyboard" in markup:
        for row in markup["keyboard"]:
            for button in row:
                if not (isinstance(button, str) or button.get("text")):
                    raise ApiError(400, "Bad Request: keyboard button text is empty")
        return markup
    if markup.get("remove_keyboard") is True or "force_reply" in markup:
        return markup
    raise ApiError(400, "Bad Request: unsupported reply markup")
