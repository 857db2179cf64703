"""Only the application package opens a database engine: adapters and the heart are handed one.

import-linter checks which modules import which; it cannot see which functions are called, so
this reads every module outside ``app/`` and fails on any call of an engine factory (ours in
``povtor.db`` or SQLAlchemy's), however it was imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CHECKED = ("povtor", "crm_sync", "outreach", "bot", "voice", "dashboard", "nlu")
FACTORIES = frozenset(
    {"create_engine", "create_async_engine", "engine_from_config", "async_engine_from_config"}
)
DEFINES_THE_FACTORY = {"povtor/db.py"}


def _factory_calls(path: Path) -> list[str]:
    """``file:line name`` of every call of an engine factory, by name or attribute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            else None
        )
        if name in FACTORIES:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return found


def _modules() -> list[Path]:
    return sorted(p for package in CHECKED for p in (ROOT / package).rglob("*.py"))


def test_the_scan_sees_the_packages_and_a_factory_call() -> None:
    modules = _modules()
    assert len(modules) > 100
    assert _factory_calls(ROOT / "povtor" / "db.py")  # the scan does find a call


def test_nothing_outside_the_application_opens_a_database_engine() -> None:
    calls = [
        call
        for path in _modules()
        if str(path.relative_to(ROOT)) not in DEFINES_THE_FACTORY
        for call in _factory_calls(path)
    ]
    assert calls == [], "open the engine in app/ and pass it (or its sessions) in"
