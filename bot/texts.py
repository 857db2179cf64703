"""Bot texts: Jinja2 templates in an editable YAML file (the shipped Russian one by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from povtor.errors import ConfigError

SHIPPED = Path(__file__).parent / "texts" / "ru.yaml"
MAX_TEXT = 4096


def _read(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read bot texts {path}: {err}") from err
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigError(f"bot texts {path} must map names to strings")
    return data


class Texts:
    """Renders a named text; a business file overrides the shipped one key by key."""

    def __init__(self, override: Path | None = None, **defaults: Any) -> None:
        raw = _read(SHIPPED)
        if override is not None:
            unknown = set(_read(override)) - set(raw)
            if unknown:
                raise ConfigError(f"unknown bot text names in {override}: {sorted(unknown)}")
            raw.update(_read(override))
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        env.globals.update(defaults)
        self._templates: dict[str, Template] = {k: env.from_string(v) for k, v in raw.items()}
        self._fixed: dict[str, str] = {}  # texts without values (labels, acks): rendered once

    @property
    def names(self) -> list[str]:
        return sorted(self._templates)

    def __call__(self, key: str, /, **values: Any) -> str:
        if not values and key in self._fixed:
            return self._fixed[key]
        text = self._templates[key].render(**values).strip()
        if len(text) > MAX_TEXT:  # Telegram refuses longer messages
            text = text[: MAX_TEXT - 1] + "…"
        if not values:
            self._fixed[key] = text
        return text
