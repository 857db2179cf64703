"""The sandbox page: be one of the emulator's Telegram users in a browser.

``/sandbox`` lists the chats; a chat shows what the bot sent (with its buttons) and what was
written from the page; pressing a button or sending a text goes to the bot as a Telegram update,
through the same emulator the bot polls. Served on loopback beside the Bot API routes.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from app.sandbox.telegram_api import BotApiEmulator
from app.sandbox.telegram_user import SimulatedUser, button_texts


class SandboxPage:
    def __init__(self, api: BotApiEmulator, names: dict[int, str] | None = None) -> None:
        self.api = api
        self.names = names or {}  # chat id -> who it is (shown in the list)
        self._users: dict[int, SimulatedUser] = {}
        self._written: dict[int, list[dict[str, Any]]] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._index)
        app.router.add_get("/sandbox", self._index)
        app.router.add_get("/sandbox/api/chats", self._chats)
        app.router.add_get("/sandbox/api/chats/{chat}", self._chat)
        app.router.add_post("/sandbox/api/chats/{chat}/press", self._press)
        app.router.add_post("/sandbox/api/chats/{chat}/text", self._text)

    def _user(self, chat_id: int) -> SimulatedUser:
        if chat_id not in self.api.chats:
            raise web.HTTPNotFound(text="no such chat")
        if chat_id not in self._users:
            self._users[chat_id] = SimulatedUser(
                self.api, chat_id, self.api.chats[chat_id].first_name
            )
        return self._users[chat_id]

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html", charset="utf-8")

    async def _chats(self, request: web.Request) -> web.Response:
        chats = [
            {"id": c.id, "name": self.names.get(c.id, c.first_name)}
            for c in self.api.chats.values()
        ]
        return web.json_response(chats)

    async def _chat(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat"])
        self._user(chat_id)
        items: list[dict[str, Any]] = [
            {
                "from": "bot",
                "at": m.received_at,
                "message_id": m.message_id,
                "text": m.text,
                "buttons": button_texts(m),
            }
            for m in self.api.sent
            if m.chat_id == chat_id
        ]
        items += self._written.get(chat_id, [])
        items.sort(key=lambda item: float(item["at"]))
        return web.json_response(items)

    async def _press(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat"])
        body = await request.json()
        message = self.api.messages.get((chat_id, int(body["message_id"])))
        if message is None:
            raise web.HTTPNotFound(text="no such message")
        user = self._user(chat_id)
        try:
            await user.press(message, str(body["button"]))
        except AssertionError as err:
            raise web.HTTPBadRequest(text="no such button") from err
        self._log(chat_id, f"[нажата кнопка «{body['button']}»]")
        return web.json_response({"ok": True})

    async def _text(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat"])
        text = str((await request.json()).get("text", "")).strip()
        if not text:
            raise web.HTTPBadRequest(text="empty text")
        await self._user(chat_id).send_text(text[:4096])
        self._log(chat_id, text)
        return web.json_response({"ok": True})

    def _log(self, chat_id: int, text: str) -> None:
        entry = {"from": "me", "at": time.monotonic(), "text": text, "buttons": []}
        self._written.setdefault(chat_id, []).append(entry)


PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Повтор — песочница Telegram</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;display:flex;height:100vh}
#list{width:260px;border-right:1px solid #ddd;overflow:auto}
#list div{padding:8px 12px;cursor:pointer}#list div.on{background:#e8f0fe}
#chat{flex:1;display:flex;flex-direction:column}
#msgs{flex:1;overflow:auto;padding:12px;background:#f4f6f8}
.m{max-width:70%;margin:6px 0;padding:8px 10px;border-radius:8px;white-space:pre-wrap}
.bot{background:#fff}.me{background:#dcf8c6;margin-left:auto}
.b{margin:4px 4px 0 0;padding:4px 8px;border:1px solid #4a76a8;background:#fff;border-radius:4px;
cursor:pointer}
form{display:flex;padding:8px;border-top:1px solid #ddd}form input{flex:1;padding:6px}
</style></head><body>
<div id="list"></div>
<div id="chat"><div id="msgs"><p>Выберите чат слева. «Вы (песочница)» — клиент для вас:
ответьте боту и посмотрите результат в дашборде.</p></div>
<form id="f"><input id="t" placeholder="Сообщение боту" autocomplete="off">
<button>Отправить</button></form></div>
<script>
let chat=null, shown="";
async function j(u,o){const r=await fetch(u,o);return r.json()}
async function list(){const cs=await j('/sandbox/api/chats');
const l=document.getElementById('list');
l.innerHTML='';for(const c of cs){const d=document.createElement('div');d.textContent=c.name;
if(c.id===chat)d.className='on';d.onclick=()=>{chat=c.id;shown='';list();draw()};l.appendChild(d)}}
async function draw(){if(chat===null)return;const ms=await j('/sandbox/api/chats/'+chat);
const key=JSON.stringify(ms);if(key===shown)return;shown=key;
const box=document.getElementById('msgs');
box.innerHTML='';for(const m of ms){const d=document.createElement('div');d.className='m '+m.from;
d.textContent=m.text;if(m.from==='bot'){const row=document.createElement('div');
for(const b of m.buttons){const x=document.createElement('button');x.className='b';x.textContent=b;
x.onclick=()=>post('/press',{message_id:m.message_id,button:b});row.appendChild(x)}d.appendChild(row)}
box.appendChild(d)}box.scrollTop=box.scrollHeight}
async function post(p,body){await fetch('/sandbox/api/chats/'+chat+p,{method:'POST',
headers:{'Content-Type':'application/json'},body:JSON.stringify(body)});draw()}
document.getElementById('f').onsubmit=e=>{e.preventDefault();const t=document.getElementById('t');
if(chat!==null&&t.value.trim()){post('/text',{text:t.value});t.value=''}};
list();setInterval(list,5000);setInterval(draw,1000);
</script></body></html>
"""
