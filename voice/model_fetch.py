"""Downloading a Vosk model: resumable (HTTP Range into a .part file), checked, unpacked in one go.

The archive is fetched into ``DATA_DIR/models/.downloads/<archive>.zip.part``; an interrupted
download resumes from the bytes already there (within one run after a dropped connection, or on
the next run). The whole file is checked (size, then checksum) before anything is unpacked, and
the unpacked folder only appears under its final name by one ``rename`` in the same filesystem.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import logging
import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from povtor.errors import ModelError
from voice.models import ModelSpec, is_model_dir

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]  # bytes present, total bytes (None: unknown)
USER_AGENT = "povtor-model-fetch"
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True, slots=True)
class FetchResult:
    name: str
    path: Path
    size: int
    sha256: str
    resumed_from: int  # bytes already on disk when this run started (0: fresh download)
    checked: tuple[str, ...]  # what was verified: "size", "sha256", "md5"


@dataclass(frozen=True, slots=True)
class Expected:
    size: int | None
    sha256: str | None
    md5: str | None


def model_url(base_url: str, spec: ModelSpec) -> str:
    """The archive of ``spec`` on the model site (POVTOR_ASR_MODEL_BASE_URL)."""
    return f"{base_url.rstrip('/')}/{spec.archive}.zip"


async def prepare_install(parent: Path, name: str, *, force: bool) -> Path:
    """The resumable downloads folder for a model or voice ``name`` installed in ``parent``;
    refuses to replace an installed one unless ``force``."""
    target = parent / name
    if not force and await asyncio.to_thread(target.exists):
        raise ModelError(f"{target} already exists (use --force to replace it)")
    downloads = parent / ".downloads"
    await asyncio.to_thread(downloads.mkdir, parents=True, exist_ok=True)
    return downloads


async def fetch_model(
    spec: ModelSpec,
    models_dir: Path,
    base_url: str,
    *,
    progress: ProgressFn | None = None,
    retries: int = 5,
    force: bool = False,
    timeout_s: float = 60.0,
) -> FetchResult:
    downloads = await prepare_install(models_dir, spec.name, force=force)
    part = downloads / f"{spec.archive}.zip.part"
    url = model_url(base_url, spec)
    resumed_from = await asyncio.to_thread(_size, part)
    listed = await asyncio.to_thread(_site_listing, base_url, spec.archive, timeout_s)
    served_total = await download(url, part, progress, retries, timeout_s)
    expected = Expected(
        size=spec.size or listed.get("size") or served_total,
        sha256=spec.sha256,
        md5=listed.get("md5"),
    )
    sha256, checked, size = await asyncio.to_thread(verify, part, expected)
    path = await asyncio.to_thread(_unpack, part, models_dir, spec.name, force)
    await asyncio.to_thread(part.unlink)
    log.info("model %s installed in %s (%d bytes, checked %s)", spec.name, path, size, checked)
    return FetchResult(spec.name, path, size, sha256, resumed_from, checked)


def open_url(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    return urllib.request.urlopen(request, timeout=timeout_s)  # URL built from settings


def _site_listing(base_url: str, archive: str, timeout_s: float) -> dict[str, Any]:
    """Size and md5 of ``archive`` from the site's model-list.json, when the site serves one."""
    url = f"{base_url.rstrip('/')}/model-list.json"
    try:
        with open_url(url, min(timeout_s, 20.0)) as resp:
            entries = json.loads(resp.read())
    except (OSError, ValueError, http.client.HTTPException) as err:
        log.info("model list %s unavailable (%s): checking size only", url, err)
        return {}
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("name") == archive:
            found: dict[str, Any] = {}
            if str(entry.get("size", "")).isdigit():
                found["size"] = int(entry["size"])
            md5 = str(entry.get("md5") or "").lower()
            if re.fullmatch(r"[0-9a-f]{32}", md5):
                found["md5"] = md5
            return found
    return {}


async def download(
    url: str, part: Path, progress: ProgressFn | None, retries: int, timeout_s: float
) -> int | None:
    """Bring ``part`` to the full archive; returns the size the server announced."""
    attempt = 0
    stop = threading.Event()
    while True:
        try:
            total, complete = await asyncio.to_thread(
                _download_once, url, part, progress, timeout_s, stop
            )
        except asyncio.CancelledError:
            stop.set()  # the thread stops at its next block; the .part file stays for a resume
            raise
        except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
            total, complete = None, False
            reason = f"{type(err).__name__}: {err}"
        except urllib.error.URLError as err:
            if isinstance(err, urllib.error.HTTPError):
                raise
            total, complete = None, False
            reason = f"{err.reason}"
        else:
            reason = "the server closed the response early"
        if complete:
            return total
        attempt += 1
        have = await asyncio.to_thread(_size, part)
        if attempt > retries:
            raise ModelError(
                f"download of {url} interrupted at {have} bytes ({reason}); "
                "run the command again to resume"
            )
        log.warning("download interrupted at %d bytes (%s); resuming", have, reason)
        await asyncio.sleep(min(10.0, 0.1 * 2**attempt))  # back off from a struggling server


def _download_once(
    url: str, part: Path, progress: ProgressFn | None, timeout_s: float, stop: threading.Event
) -> tuple[int | None, bool]:
    """One request (blocking, in a thread): append what arrives to ``part``."""
    have = _size(part)
    try:
        resp = open_url(url, timeout_s, {"Range": f"bytes={have}-"} if have else None)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            total = _total_from_range(err.headers.get("Content-Range", ""))
            if total == have:
                return total, True  # already complete
            part.unlink()  # the file on the server changed: start over
            return None, False
        if err.code == 404:
            raise ModelError(f"{url} not found on the model site") from err
        raise ModelError(f"{url}: HTTP {err.code} {err.reason}") from err
    with resp:
        if resp.status == 206:
            match = _RANGE.fullmatch(resp.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                raise ModelError(f"{url}: the server answered a different range than asked")
            total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        else:
            length = resp.headers.get("Content-Length")
            have, total, mode = 0, int(length) if length else None, "wb"
        if progress:
            progress(have, total)
        # what arrives before an interruption is kept: the next attempt resumes after it
        with part.open(mode) as fh:
            while not stop.is_set():
                block = resp.read(1 << 16)
                if not block:
                    break
                fh.write(block)
                have += len(block)
                if progress:
                    progress(have, total)
    return total, total is None or have >= total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _total_from_range(value: str) -> int | None:
    match = re.fullmatch(r"bytes \*/(\d+)", value.strip())
    return int(match.group(1)) if match else None


def verify(part: Path, expected: Expected) -> tuple[str, tuple[str, ...], int]:
    """Check size and checksums; a bad file is deleted so the next run starts afresh."""
    checked: list[str] = []
    size = part.stat().st_size
    if expected.size is not None:
        if size != expected.size:
            part.unlink()
            raise ModelError(f"downloaded {size} bytes, expected {expected.size}; file removed")
        checked.append("size")
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with part.open("rb") as fh:
        while block := fh.read(1 << 20):
            sha256.update(block)
            md5.update(block)
    for name, want, got in (
        ("sha256", expected.sha256, sha256.hexdigest()),
        ("md5", expected.md5, md5.hexdigest()),
    ):
        if want is None:
            continue
        if got != want.lower():
            part.unlink()
            raise ModelError(f"{name} mismatch: got {got}, expected {want}; file removed")
        checked.append(name)
    if not checked:
        log.warning("nothing to check %s against: size unknown, no checksum", part.name)
    return sha256.hexdigest(), tuple(checked), size


def _unpack(archive: Path, models_dir: Path, name: str, force: bool) -> Path:
    """Extract into a temporary folder next to the target, then rename it into place."""
    target = models_dir / name
    staging = Path(tempfile.mkdtemp(prefix=f".unpack-{name}-", dir=models_dir))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    member_path = PurePosixPath(member)
                    if member_path.is_absolute() or ".." in member_path.parts:
                        raise ModelError(f"unsafe path in archive: {member!r}")
                zf.extractall(staging)
        except zipfile.BadZipFile as err:
            archive.unlink()
            raise ModelError(f"the archive is not a valid zip: {err}; file removed") from err
        root = _model_root(staging)
        if root is None:
            archive.unlink()
            raise ModelError("the archive holds no Vosk model (no am/final.mdl, conf/model.conf)")
        return replace_folder(root, target, force=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_folder(source: Path, target: Path, *, force: bool) -> Path:
    """Rename ``source`` to ``target``; an existing target is replaced only with ``force``,
    moved aside first and removed once the new one is in place."""
    old: Path | None = None
    if target.exists():
        if not force:
            raise ModelError(f"{target} already exists (use --force to replace it)")
        old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        target.rename(old)
    source.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _model_root(staging: Path) -> Path | None:
    if is_model_dir(staging):
        return staging
    children = [p for p in staging.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(children) == 1 and is_model_dir(children[0]):
        return children[0]
    return None
