"""Waiting on a process's own word: an event set when a logger says a given phrase."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def logged(logger_name: str, phrase: str) -> Iterator[asyncio.Event]:
    """An event set (from any thread) once ``logger_name`` logs a message containing ``phrase``;
    the logger is listened to at INFO while inside."""
    said = asyncio.Event()
    loop = asyncio.get_running_loop()

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if phrase in record.getMessage():
                loop.call_soon_threadsafe(said.set)

    handler, logger = Said(), logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield said
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
