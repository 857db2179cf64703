"""`.env.example` is part of the product: every variable it names is a real setting, every value
it sets is read into that setting, and every commented example is a value the setting accepts.

Settings ignore unknown variables (a deployment's `.env` may hold other programs' variables), so
a misspelt name in the example would silently do nothing; these tests are what catches it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from povtor.settings import Settings

EXAMPLE = Path(__file__).parents[3] / ".env.example"
_ACTIVE = re.compile(r"^(POVTOR_[A-Z0-9_]+)=(.*)$")
_COMMENTED = re.compile(r"^#\s*(POVTOR_[A-Z0-9_]+)=(.*)$")


def _settings_by_variable() -> dict[str, tuple[type[BaseSettings], str, str | None]]:
    """``POVTOR_...`` -> (section class, field name, the section's attribute on Settings)."""
    found: dict[str, tuple[type[BaseSettings], str, str | None]] = {}
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseSettings):
            prefix = str(section.model_config.get("env_prefix", ""))
            for inner in section.model_fields:
                found[f"{prefix}{inner}".upper()] = (section, inner, name)
        else:
            found[f"POVTOR_{name}".upper()] = (Settings, name, None)
    return found


def _lines(pattern: re.Pattern[str]) -> list[tuple[int, str, str]]:
    out = []
    for number, line in enumerate(EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        match = pattern.match(line.strip())
        if match:
            # a commented example may carry a note after two spaces: "VALUE   (what it is)"
            value = re.split(r"\s{2,}\(", match.group(2))[0].strip()
            out.append((number, match.group(1), value))
    return out


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No POVTOR_ variable from the caller's environment, no .env in the working folder."""
    for name in list(os.environ):
        if name.startswith("POVTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_every_variable_the_example_names_is_a_setting() -> None:
    known = _settings_by_variable()
    named = _lines(_ACTIVE) + _lines(_COMMENTED)
    assert named, "the example names no variable"
    unknown = [f".env.example:{n}: {name}" for n, name, _ in named if name not in known]
    assert unknown == []


def test_no_variable_is_set_twice() -> None:
    names = [name for _, name, _ in _lines(_ACTIVE)]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_each_value_the_example_sets_lands_in_its_setting(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    known = _settings_by_variable()
    (tmp_path / ".env").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    loaded = Settings()
    (tmp_path / ".env").unlink()
    for number, name, value in _lines(_ACTIVE):
        section, field, attribute = known[name]
        clean_env.setenv(name, value)
        expected = getattr(section(), field)
        clean_env.delenv(name)
        holder = loaded if attribute is None else getattr(loaded, attribute)
        assert getattr(holder, field) == expected, f".env.example:{number}: {name}"


def test_every_commented_example_is_a_value_its_setting_accepts(
    clean_env: pytest.MonkeyPatch,
) -> None:
    known = _settings_by_variable()
    for number, name, value in _lines(_COMMENTED):
        if not value:
            continue
        section, field, _ = known[name]
        clean_env.setenv(name, value)
        try:
            got = getattr(section(), field)
        except Exception as err:  # the message names the line for whoever edits the example
            raise AssertionError(f".env.example:{number}: {name}={value}: {err}") from err
        finally:
            clean_env.delenv(name)
        assert got is not None, f".env.example:{number}: {name} read as nothing"
