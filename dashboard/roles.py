"""Who may do what in the dashboard: three roles, decided by pure functions."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything, users included
    MANAGER = "manager"  # clients, NPS, tasks, recordings
    VIEWER = "viewer"  # reads only; phone numbers masked, no recordings

    @property
    def title_ru(self) -> str:
        return _TITLES[self]


_TITLES = {Role.ADMIN: "администратор", Role.MANAGER: "менеджер", Role.VIEWER: "наблюдатель"}


def can_write(role: Role) -> bool:
    """Take and close tasks, create follow-ups."""
    return role in (Role.ADMIN, Role.MANAGER)


def can_manage_users(role: Role) -> bool:
    return role is Role.ADMIN


def can_erase(role: Role) -> bool:
    """Erase a client's personal data everywhere on their request (152-FZ): irreversible."""
    return role is Role.ADMIN


def sees_full_phones(role: Role) -> bool:
    return role in (Role.ADMIN, Role.MANAGER)


def can_listen(role: Role) -> bool:
    """Recordings are personal data: only those who work with the client hear them."""
    return role in (Role.ADMIN, Role.MANAGER)
