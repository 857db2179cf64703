"""CPU of the bot's wire path per button press, without network or database.

    .venv/bin/python scripts/bench_bot_wire.py [--pages 20] [--rounds 12]

Per press (a reminder button press as the unit tests build it): its share of a 100-press
``getUpdates`` page validated from the answer's text, the ``answerCallbackQuery`` request body
built, and its answer (``true``) validated. The anchor is aiogram's own session (url-encoded
form, orjson's ``loads`` then pydantic), the subject the bot's ``JsonSession`` (JSON bodies,
answers validated from their text), alternately. Printed first: the subject's CPU time as a
share of the anchor's (median of the rounds) and the machine's load; then the microseconds per
press of the median round of each. Each run starts after a full collection, so that neither
side pays for what the other left behind.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
from aiogram import Bot  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.methods import AnswerCallbackQuery, GetUpdates, Response  # noqa: E402
from aiogram.types import Update  # noqa: E402
from bench_common import Comparison, LoadWatch, alternate, report_first  # noqa: E402

from bot.session import JsonSession, build_session  # noqa: E402
from povtor.settings import TelegramSettings  # noqa: E402
from tests.unit.bot.test_objects import _press as press  # noqa: E402  (the tests' press)

TOKEN = "123456:bench-token"
PAGE_SIZE = 100
TOAST = "Спасибо! Передали менеджеру, он свяжется с вами."
ANSWER = '{"ok":true,"result":true}'
# the response models both sides use, kept alive as the bot's session keeps them (see
# bot.session.ResponseModels): rebuilt after a collection, they would cost either side
# milliseconds at random
MODELS = (Response[list[Update]], Response[bool])


def wire_path(session: AiohttpSession, page: str, pages: int) -> Callable[[], float]:
    """CPU seconds for ``pages`` pages through ``session``'s own code."""
    bot = Bot(TOKEN, session=session)

    def body(method: AnswerCallbackQuery) -> object:
        if isinstance(session, JsonSession):
            return session.json_body(bot, method)
        return session.build_form_data(bot, method)()  # the payload aiohttp would send

    def run() -> float:
        gc.collect()
        started = time.process_time()
        for _ in range(pages):
            updates = session.check_response(bot, GetUpdates(), 200, page).result
            for update in updates or []:
                assert update.callback_query is not None
                method = AnswerCallbackQuery(
                    callback_query_id=update.callback_query.id, text=TOAST
                )
                body(method)
                session.check_response(bot, method, 200, ANSWER)
        return time.process_time() - started

    return run


def main(args: argparse.Namespace) -> None:
    tg = TelegramSettings(bot_token=TOKEN)
    ours = build_session(tg)  # also binds aiogram's objects in one step, for both sides
    theirs = AiohttpSession(json_loads=orjson.loads)
    page = orjson.dumps({"ok": True, "result": [press(i) for i in range(PAGE_SIZE)]}).decode()
    presses = args.pages * PAGE_SIZE
    load = LoadWatch()
    pairs = alternate(
        wire_path(theirs, page, args.pages), wire_path(ours, page, args.pages), args.rounds, load
    )
    comparison = Comparison(
        "bot wire path CPU per press, JSON session", "aiogram's form session", pairs
    )
    anchor_us = statistics.median(p.anchor_s for p in pairs) / presses * 1e6
    subject_us = statistics.median(p.subject_s for p in pairs) / presses * 1e6
    lower = sum(p.subject_s < p.anchor_s for p in pairs)
    report_first(
        [comparison],
        load,
        [
            f"wire {{'presses_per_round': {presses}, 'json_us_per_press': {subject_us:.1f}, "
            f"'form_us_per_press': {anchor_us:.1f}, 'json_lower_in_rounds': {lower}, "
            f"'rounds': {len(pairs)}}}"
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20, help="100-press pages per round")
    parser.add_argument("--rounds", type=int, default=12)
    main(parser.parse_args())
