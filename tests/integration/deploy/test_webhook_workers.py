"""Two workers of one bot in webhook mode on PostgreSQL, as a deployment behind a load balancer
runs them: Telegram posts to one URL, the balancer hands each post to either worker. Every
update is handled exactly once even when it reaches both workers at the same moment (a
redelivery racing the first try), and both workers send."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_user import FakeUser
from tests.integration.bot.worker_proc import Worker, due_for_survey, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.telegram, pytest.mark.e2e, pytest.mark.slow]

PATH = "/telegram/webhook"
CLIENTS = 6


class Balancer:
    """The load balancer in front of the workers: each post goes to the next worker in turn
    and, while ``twice`` is set, to the other one as well, at the same time."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.turn = itertools.cycle(range(len(ports)))
        self.twice = True
        self.first_to: list[int] = []  # which worker each post went to first
        self.statuses: list[int] = []  # every worker's answer
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.port = free_port()

    async def start(self) -> str:
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post(PATH, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _post(self, port: int, body: bytes, headers: dict[str, str]) -> int:
        assert self._http is not None
        url = f"http://127.0.0.1:{port}{PATH}"
        async with self._http.post(url, data=body, headers=headers) as response:
            self.statuses.append(response.status)
            return response.status

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-telegram")}
        headers["Content-Type"] = "application/json"
        first = next(self.turn)
        self.first_to.append(first)
        targets = [self.ports[first]]
        if self.twice:
            targets += [p for p in self.ports if p != self.ports[first]]
        answers = await asyncio.gather(*(self._post(p, body, headers) for p in targets))
        return web.Response(status=answers[0], text="{}", content_type="application/json")


async def _outcome_workers(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT worker_id FROM outreach_outcomes ORDER BY id"))
        return [r[0] for r in rows]


async def test_two_webhook_workers_handle_each_update_once_and_both_send(
    db_url: str, store: SqlHistoryStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("one worker per SQLite database")
    fake = FakeTelegram()
    await fake.start()
    ports = [free_port(), free_port()]
    balancer = Balancer(ports)
    url = await balancer.start()
    users = []
    for n in range(CLIENTS):
        await due_for_survey(store, 7100 + n, n)
        users.append(FakeUser(fake, 7100 + n))
    workers = [
        Worker(
            Worker.env_for(
                db_url,
                tmp_path / name,
                fake.base_url,
                POVTOR_TELEGRAM_MODE="webhook",
                POVTOR_TELEGRAM_WEBHOOK_URL=url,
                POVTOR_TELEGRAM_WEBHOOK_SECRET="hook-Secret_42",
                POVTOR_TELEGRAM_WEBHOOK_HOST="127.0.0.1",
                POVTOR_TELEGRAM_WEBHOOK_PORT=str(port),
                POVTOR_SECRET_KEY="one-key-for-every-worker",
                POVTOR_OUTREACH_WORKER_ID=name,
                # one message at a time, a few a second: neither worker can take them all
                POVTOR_OUTREACH_BATCH_SIZE="1",
                POVTOR_OUTREACH_CONCURRENCY="1",
                POVTOR_TELEGRAM_GLOBAL_RATE="2",
            ),
            name,
        )
        for name, port in zip(("wa", "wb"), ports, strict=True)
    ]
    try:
        for worker in workers:
            await worker.start()
        for worker in workers:  # a loaded machine can take a minute or two to import all
            await worker.wait_for_line("webhook listening on 127.0.0.1:", within=180)
        await fake.wait_for(lambda: fake.webhook is not None, within=30)
        assert fake.webhook is not None
        assert fake.webhook.url == url

        surveys = [await u.next_message(within=90) for u in users]
        assert all("от 0 до 10" in s.text for s in surveys)
        assert sorted(set(await _outcome_workers(engine))) == ["wa", "wb"]  # both sent

        # every press and message reaches both workers at once: each is handled once
        queries = [await u.press(s, "9") for u, s in zip(users, surveys, strict=True)]
        toasts = [await u.answer_to(q, within=30) for u, q in zip(users, queries, strict=True)]
        assert all(t is not None for t in toasts)
        follow_ups = [await u.next_message(within=30) for u in users]
        for u in users:
            await u.send_text("Всё понравилось")
        thanks = [await u.next_message(within=30) for u in users]

        # and with one worker per post, each worker handles its share
        balancer.twice = False
        for u in users:
            await u.send_text("/help")
        helps = [await u.next_message(within=30) for u in users]
        await fake.wait_for(lambda: fake.pending_updates() == 0, within=30)
    finally:
        codes = [await w.stop() if w.proc is not None else None for w in workers]
        await balancer.stop()
        await fake.stop()

    for worker, code in zip(workers, codes, strict=True):
        assert code == 0, worker.log()[-3000:]
        assert "Traceback" not in worker.log(), worker.log()[-3000:]
    assert all(s == 200 for s in balancer.statuses), balancer.statuses
    assert set(balancer.first_to) == {0, 1}
    assert all(f.text == "Что позволило нам получить такую высокую оценку?" for f in follow_ups)
    assert all(t.text == "Спасибо за ответ! Мы всё прочитаем." for t in thanks)
    assert all("/complaint" in h.text for h in helps)
    for u in users:  # survey, follow-up, thanks, help: nothing doubled
        assert len(u.messages()) == 4, [m.text for m in u.messages()]
    answers = await store.list_nps()
    assert sorted((a.score, a.reason_text) for a in answers) == [(9, "Всё понравилось")] * CLIENTS
    assert fake.answered_count == CLIENTS  # each press answered once
