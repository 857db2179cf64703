"""`povtor model fetch ru_RU-...` for Piper voices against a local voice site: two files,
each resumable and checked (pinned size and md5, a pinned sha256, or the site's voices.json
size and md5), installed by one rename, never half."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from aiohttp import web

from povtor.errors import ModelError
from voice.piper_voices import KNOWN_VOICES, VoiceFile, VoiceSpec, fetch_voice, resolve_voice

REAL = KNOWN_VOICES["ru_RU-irina-medium"]
# the real voice's name and site path with nothing pinned: the local files stand for the voice
SPEC = replace(REAL, files=(VoiceFile(".onnx"), VoiceFile(".onnx.json")))
MODEL = bytes(range(256)) * 600  # ~150 kB standing for the .onnx
CONFIG = json.dumps({"audio": {"sample_rate": 22050}, "espeak": {"voice": "ru"}}).encode()


def pinned_to(model: bytes, config: bytes) -> VoiceSpec:
    return replace(
        REAL,
        files=(
            VoiceFile(".onnx", len(model), md5=hashlib.md5(model).hexdigest()),
            VoiceFile(".onnx.json", len(config), md5=hashlib.md5(config).hexdigest()),
        ),
    )


@dataclass
class VoiceSite:
    files: dict[str, bytes] = field(
        default_factory=lambda: {f"{SPEC.path}.onnx": MODEL, f"{SPEC.path}.onnx.json": CONFIG}
    )
    listing: dict[str, dict[str, object]] | None = None
    drop_after: list[int] = field(default_factory=list)
    ranges: list[str | None] = field(default_factory=list)
    base_url: str = ""

    def list_truthfully(self) -> None:
        self.listing = {
            path: {"size_bytes": len(body), "md5_digest": hashlib.md5(body).hexdigest()}
            for path, body in self.files.items()
        }

    async def file(self, request: web.Request) -> web.StreamResponse:
        body = self.files.get(request.match_info["path"])
        if body is None:
            return web.Response(status=404)
        header = request.headers.get("Range")
        self.ranges.append(header)
        start = int(header.removeprefix("bytes=").split("-")[0]) if header else 0
        resp = web.StreamResponse(status=206 if header else 200)
        resp.content_length = len(body) - start
        if header:
            resp.headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        await resp.prepare(request)
        cut = self.drop_after.pop(0) if self.drop_after else None
        await resp.write(body[start:] if cut is None else body[start : start + cut])
        if cut is not None:
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp

    async def voices(self, request: web.Request) -> web.Response:
        if self.listing is None:
            return web.Response(status=404)
        return web.json_response({SPEC.name: {"files": self.listing}, "other": {}})


@pytest.fixture
async def site() -> AsyncIterator[VoiceSite]:
    voice_site = VoiceSite()
    app = web.Application()
    app.router.add_get("/v1/voices.json", voice_site.voices)
    app.router.add_get("/v1/{path:.+}", voice_site.file)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    voice_site.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield voice_site
    finally:
        await runner.cleanup()


def leftovers(voices: Path) -> list[str]:
    names = [p.name for p in voices.iterdir() if p.name != ".downloads"]
    return sorted(names + [f".downloads/{p.name}" for p in (voices / ".downloads").glob("*")])


async def test_voice_is_downloaded_checked_against_the_site_list_and_installed(
    site: VoiceSite, tmp_path: Path
) -> None:
    site.list_truthfully()
    result = await fetch_voice(SPEC, tmp_path, site.base_url)
    folder = tmp_path / SPEC.name
    assert result.path == folder
    assert (folder / f"{SPEC.name}.onnx").read_bytes() == MODEL
    assert (folder / f"{SPEC.name}.onnx.json").read_bytes() == CONFIG
    assert result.checked == ("md5", "size")
    assert result.sha256 == hashlib.sha256(MODEL).hexdigest()
    assert leftovers(tmp_path) == [SPEC.name]
    assert resolve_voice(SPEC.name, tmp_path) == folder / f"{SPEC.name}.onnx"


async def test_a_dropped_download_resumes_where_it_stopped(
    site: VoiceSite, tmp_path: Path
) -> None:
    site.drop_after = [60_000]
    result = await fetch_voice(SPEC, tmp_path, site.base_url, retries=2)
    assert site.ranges[:2] == [None, "bytes=60000-"]
    assert (result.path / f"{SPEC.name}.onnx").read_bytes() == MODEL


async def test_an_interrupted_run_is_resumed_by_the_next_and_nothing_half_is_installed(
    site: VoiceSite, tmp_path: Path
) -> None:
    site.drop_after = [50_000]
    with pytest.raises(ModelError, match="interrupted at 50000 bytes"):
        await fetch_voice(SPEC, tmp_path, site.base_url, retries=0)
    assert not (tmp_path / SPEC.name).exists()
    with pytest.raises(ModelError, match="not installed"):
        resolve_voice(SPEC.name, tmp_path)
    result = await fetch_voice(SPEC, tmp_path, site.base_url)
    assert result.resumed_from == 50_000
    assert site.ranges[-2] == "bytes=50000-"


async def test_a_file_that_does_not_match_its_pinned_checksum_is_refused_and_removed(
    site: VoiceSite, tmp_path: Path
) -> None:
    pinned = VoiceSpec(
        SPEC.name,
        SPEC.path,
        "pinned",
        (VoiceFile(".onnx", len(MODEL), "0" * 64), VoiceFile(".onnx.json")),
    )
    with pytest.raises(ModelError, match="sha256 mismatch"):
        await fetch_voice(pinned, tmp_path, site.base_url)
    assert leftovers(tmp_path) == []


async def test_a_file_of_the_wrong_size_by_the_site_list_is_refused(
    site: VoiceSite, tmp_path: Path
) -> None:
    site.list_truthfully()
    assert site.listing is not None
    site.listing[f"{SPEC.path}.onnx"]["size_bytes"] = len(MODEL) + 1
    with pytest.raises(ModelError, match="expected"):
        await fetch_voice(SPEC, tmp_path, site.base_url)
    assert not (tmp_path / SPEC.name).exists()


async def test_an_installed_voice_is_not_replaced_without_force(
    site: VoiceSite, tmp_path: Path
) -> None:
    await fetch_voice(SPEC, tmp_path, site.base_url)
    with pytest.raises(ModelError, match="already exists"):
        await fetch_voice(SPEC, tmp_path, site.base_url)
    site.files[f"{SPEC.path}.onnx"] = MODEL[::-1]
    result = await fetch_voice(SPEC, tmp_path, site.base_url, force=True)
    assert (result.path / f"{SPEC.name}.onnx").read_bytes() == MODEL[::-1]
    assert leftovers(tmp_path) == [SPEC.name]


def test_every_russian_voice_has_its_catalogue_size_and_md5_pinned() -> None:
    for spec in KNOWN_VOICES.values():
        assert [f.suffix for f in spec.files] == [".onnx", ".onnx.json"]
        for file in spec.files:
            assert file.size is not None, (spec.name, file)
            assert file.size > 1000, (spec.name, file)
            assert file.md5 is not None, (spec.name, file)
            assert len(file.md5) == 32, (spec.name, file)
            int(file.md5, 16)
    assert len({f.md5 for spec in KNOWN_VOICES.values() for f in spec.files}) == 8


async def test_pinned_size_and_md5_are_checked_even_when_the_site_lists_nothing(
    site: VoiceSite, tmp_path: Path
) -> None:
    result = await fetch_voice(pinned_to(MODEL, CONFIG), tmp_path, site.base_url)
    assert result.checked == ("md5", "size")
    assert (result.path / f"{SPEC.name}.onnx").read_bytes() == MODEL


async def test_a_pin_wins_over_a_site_list_that_agrees_with_a_changed_file(
    site: VoiceSite, tmp_path: Path
) -> None:
    site.files[f"{SPEC.path}.onnx"] = MODEL[::-1]  # same size, other bytes
    site.list_truthfully()  # the site vouches for the changed file
    with pytest.raises(ModelError, match="md5 mismatch"):
        await fetch_voice(pinned_to(MODEL, CONFIG), tmp_path, site.base_url)
    assert leftovers(tmp_path) == []


async def test_the_model_command_checks_the_real_pins_and_lists_what_it_installed(
    site: VoiceSite, tmp_path: Path
) -> None:
    site.list_truthfully()
    env = {
        **os.environ,
        "POVTOR_DATA_DIR": str(tmp_path),
        "POVTOR_CALL_PIPER_BASE_URL": site.base_url,
    }

    async def povtor(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", *args, env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode()

    # the site serves a stand-in the catalogue pins do not describe: refused, nothing installed
    code, out = await povtor("model", "fetch", SPEC.name)
    assert code != 0, out
    assert f"expected {REAL.files[0].size}" in out
    assert not (tmp_path / "voices" / SPEC.name).exists()
    code, out = await povtor("model", "list")
    assert code == 0, out
    assert "folder" not in out
    # a voice put in place by hand (as the fetch would) is listed as installed
    folder = tmp_path / "voices" / SPEC.name
    folder.mkdir(parents=True)
    (folder / f"{SPEC.name}.onnx").write_bytes(MODEL)
    (folder / f"{SPEC.name}.onnx.json").write_bytes(CONFIG)
    code, out = await povtor("model", "list")
    assert code == 0, out
    assert SPEC.name in out
    assert "folder" in out
