"""argon2id password hashes, computed in a thread so the event loop never waits on them."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from povtor.settings import DashboardSettings

MIN_LENGTH = 10
MIN_SCORE = 3  # zxcvbn's 0-4: 3 is "safely unguessable" for an online attack with throttling
ZXCVBN_MAX = 72  # zxcvbn's own input limit; the start of a longer password decides


class Passwords:
    def __init__(self, settings: DashboardSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verified when the login is unknown, so both cases take the same time.
        self._dummy = self._hasher.hash("not a real password, only for timing")

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


def password_problem(password: str, login: str = "") -> str | None:
    """Why a new password is refused (Russian, shown to the user), or None.

    Beyond length: zxcvbn (MIT) estimates the guesses needed, knowing common passwords, words,
    names, keyboard walks, dates and repeats, and the login itself.
    """
    if len(password) < MIN_LENGTH:
        return f"Пароль должен быть не короче {MIN_LENGTH} символов"
    if password.strip() != password:
        return "Пароль не должен начинаться или заканчиваться пробелом"
    folded = password.casefold()
    if login and login.casefold() in folded:
        return "Пароль не должен содержать логин"
    from zxcvbn import zxcvbn

    inputs = [login, "povtor", "повтор", "admin", "manager", "dashboard"]
    if zxcvbn(password[:ZXCVBN_MAX], user_inputs=[i for i in inputs if i])["score"] < MIN_SCORE:
        return (
            "Пароль слишком простой: он есть в списках частых паролей или легко угадывается. "
            "Возьмите три-четыре не связанных слова или случайные символы"
        )
    return None
