"""New passwords: long enough, not common, not the login."""

from __future__ import annotations

import pytest

from dashboard.passwords import password_problem


@pytest.mark.parametrize(
    ("password", "login", "reason"),
    [
        ("short", "anna", "не короче"),
        ("password123456", "anna", "слишком простой"),
        ("qwertyuiop12", "anna", "слишком простой"),
        ("1234567890", "anna", "слишком простой"),
        ("anna.petrova-1", "anna.petrova", "не должен содержать логин"),
        ("ANNA.PETROVA!!", "anna.petrova", "не должен содержать логин"),
        ("povtor2026", "anna", "слишком простой"),
        (" пробел в начале-1", "anna", "пробелом"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(
    password: str, login: str, reason: str
) -> None:
    problem = password_problem(password, login)
    assert problem is not None
    assert reason in problem


@pytest.mark.parametrize(
    "password",
    ["korova-lodka-sneg", "первый-пароль-1", "Kx9#mQ2vLp7", "x" * 20 + "Тайный пароль склад" * 9],
)
def test_strong_passwords_are_accepted(password: str) -> None:
    assert password_problem(password, "anna") is None
