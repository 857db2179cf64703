"""`povtor model fetch` against a local HTTP server serving a model zip made here."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from povtor.errors import ModelError
from voice.model_fetch import fetch_model
from voice.models import ModelSpec, is_model_dir

ARCHIVE = "vosk-model-small-xx-0.1"


def model_zip(
    top: str | None = ARCHIVE, *, with_model: bool = True, extra: str | None = None
) -> bytes:
    buf = io.BytesIO()
    prefix = f"{top}/" if top else ""
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        if with_model:
            zf.writestr(f"{prefix}am/final.mdl", bytes(range(256)) * 400)  # ~100 kB
            zf.writestr(f"{prefix}conf/model.conf", "--sample-frequency=16000\n")
        zf.writestr(f"{prefix}README", "test model\n")
        if extra:
            zf.writestr(extra, "x")
    return buf.getvalue()


@dataclass
class ModelSite:
    """A model site: serves the archive (with Range), model-list.json, and can fail on purpose."""

    body: bytes = field(default_factory=model_zip)
    drop_after: list[int] = field(default_factory=list)  # per request: cut after N bytes
    listed_md5: str | None = None
    listed_size: int | None = None
    ranges: list[str | None] = field(default_factory=list)
    served: int = 0
    base_url: str = ""

    async def archive(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Range")
        self.ranges.append(header)
        start = int(header.removeprefix("bytes=").split("-")[0]) if header else 0
        if start >= len(self.body):
            return web.Response(status=416, headers={"Content-Range": f"bytes */{len(self.body)}"})
        resp = web.StreamResponse(status=206 if header else 200)
        resp.content_length = len(self.body) - start
        if header:
            resp.headers["Content-Range"] = f"bytes {start}-{len(self.body) - 1}/{len(self.body)}"
        await resp.prepare(request)
        cut = self.drop_after.pop(0) if self.drop_after else None
        chunk = self.body[start:] if cut is None else self.body[start : start + cut]
        await resp.write(chunk)
        self.served += len(chunk)
        if cut is not None:
            assert request.transport is not None
            request.transport.close()  # the connection drops mid-body
            return resp
        await resp.write_eof()
        return resp

    async def model_list(self, request: web.Request) -> web.Response:
        if self.listed_md5 is None and self.listed_size is None:
            return web.Response(status=404)
        entry = {"name": ARCHIVE, "md5": self.listed_md5, "size": self.listed_size}
        return web.Response(text=json.dumps([{"name": "other"}, entry]))


@pytest.fixture
async def site() -> AsyncIterator[ModelSite]:
    model_site = ModelSite()
    app = web.Application()
    app.router.add_get(f"/models/{ARCHIVE}.zip", model_site.archive)
    app.router.add_get("/models/model-list.json", model_site.model_list)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    model_site.base_url = f"http://127.0.0.1:{port}/models"
    try:
        yield model_site
    finally:
        await runner.cleanup()


SPEC = ModelSpec("xx-small", ARCHIVE, "test")


def leftovers(models: Path) -> list[str]:
    """Anything in the models folder but installed models and the (empty) downloads folder."""
    names = [p.name for p in models.iterdir() if p.name != ".downloads"]
    names += [f".downloads/{p.name}" for p in (models / ".downloads").glob("*")]
    return sorted(names)


async def test_model_is_downloaded_checked_and_unpacked(site: ModelSite, tmp_path: Path) -> None:
    site.listed_md5 = hashlib.md5(site.body).hexdigest()
    site.listed_size = len(site.body)
    progress: list[tuple[int, int | None]] = []
    result = await fetch_model(
        SPEC, tmp_path, site.base_url, progress=lambda d, t: progress.append((d, t))
    )
    assert result.path == tmp_path / "xx-small"
    assert is_model_dir(result.path)
    assert (result.path / "README").read_text() == "test model\n"
    assert result.sha256 == hashlib.sha256(site.body).hexdigest()
    assert result.checked == ("size", "md5")
    assert progress[-1] == (len(site.body), len(site.body))
    assert leftovers(tmp_path) == ["xx-small"]


async def test_dropped_connection_is_resumed_with_range(site: ModelSite, tmp_path: Path) -> None:
    site.drop_after = [40_000, 30_000]
    result = await fetch_model(SPEC, tmp_path, site.base_url, retries=3)
    assert site.ranges == [None, "bytes=40000-", "bytes=70000-"]
    assert site.served == len(site.body)  # nothing downloaded twice
    assert result.sha256 == hashlib.sha256(site.body).hexdigest()
    assert is_model_dir(result.path)


async def test_interrupted_run_leaves_a_part_file_the_next_run_resumes(
    site: ModelSite, tmp_path: Path
) -> None:
    site.drop_after = [50_000]
    with pytest.raises(ModelError, match="interrupted at 50000 bytes"):
        await fetch_model(SPEC, tmp_path, site.base_url, retries=0)
    assert not (tmp_path / "xx-small").exists()
    assert (tmp_path / ".downloads" / f"{ARCHIVE}.zip.part").stat().st_size == 50_000

    result = await fetch_model(SPEC, tmp_path, site.base_url, retries=0)
    assert result.resumed_from == 50_000
    assert site.ranges[-1] == "bytes=50000-"
    assert is_model_dir(result.path)
    assert leftovers(tmp_path) == ["xx-small"]


async def test_wrong_checksum_is_rejected_and_nothing_installed(
    site: ModelSite, tmp_path: Path
) -> None:
    site.listed_md5 = "0" * 32
    with pytest.raises(ModelError, match="md5 mismatch"):
        await fetch_model(SPEC, tmp_path, site.base_url)
    assert leftovers(tmp_path) == []


async def test_wrong_sha256_from_the_registry_is_rejected(site: ModelSite, tmp_path: Path) -> None:
    spec = ModelSpec("xx-small", ARCHIVE, "test", sha256="f" * 64)
    with pytest.raises(ModelError, match="sha256 mismatch"):
        await fetch_model(spec, tmp_path, site.base_url)
    assert leftovers(tmp_path) == []


async def test_size_other_than_expected_is_rejected(site: ModelSite, tmp_path: Path) -> None:
    spec = ModelSpec("xx-small", ARCHIVE, "test", size=len(site.body) + 1)
    with pytest.raises(ModelError, match="expected"):
        await fetch_model(spec, tmp_path, site.base_url)
    assert leftovers(tmp_path) == []


async def test_archive_without_a_model_installs_nothing(site: ModelSite, tmp_path: Path) -> None:
    site.body = model_zip(with_model=False)
    with pytest.raises(ModelError, match="holds no Vosk model"):
        await fetch_model(SPEC, tmp_path, site.base_url)
    assert leftovers(tmp_path) == []


async def test_archive_escaping_its_folder_is_refused(site: ModelSite, tmp_path: Path) -> None:
    site.body = model_zip(extra="../../evil.txt")
    with pytest.raises(ModelError, match="unsafe path"):
        await fetch_model(SPEC, tmp_path / "models", site.base_url)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "models" / "xx-small").exists()


async def test_not_a_zip_is_rejected(site: ModelSite, tmp_path: Path) -> None:
    site.body = b"<html>maintenance</html>" * 100
    with pytest.raises(ModelError, match="not a valid zip"):
        await fetch_model(SPEC, tmp_path, site.base_url)
    assert leftovers(tmp_path) == []


async def test_installed_model_is_kept_unless_forced(site: ModelSite, tmp_path: Path) -> None:
    await fetch_model(SPEC, tmp_path, site.base_url)
    with pytest.raises(ModelError, match="already exists"):
        await fetch_model(SPEC, tmp_path, site.base_url)

    site.body = model_zip(top=None)  # a new version, model files at the top of the zip
    failing = ModelSpec("xx-small", ARCHIVE, "test", sha256="0" * 64)
    with pytest.raises(ModelError):
        await fetch_model(failing, tmp_path, site.base_url, force=True)
    assert is_model_dir(tmp_path / "xx-small")  # a failed replacement leaves the old one

    result = await fetch_model(SPEC, tmp_path, site.base_url, force=True)
    assert is_model_dir(result.path)
    assert leftovers(tmp_path) == ["xx-small"]


async def test_missing_archive_is_reported(site: ModelSite, tmp_path: Path) -> None:
    spec = ModelSpec("yy", "vosk-model-yy", "test")
    with pytest.raises(ModelError, match="not found"):
        await fetch_model(spec, tmp_path, site.base_url)
