"""Both recording storages pass the same contract: a local folder and S3 (moto over HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from povtor.settings import RecordingSettings, Settings
from voice.call_records import StorageKind
from voice.storage import (
    LocalStorage,
    RecordingStorage,
    S3Storage,
    StorageError,
    recording_key,
    storage_from_settings,
    storages_from_settings,
)


def _read(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, recordings_root: Path) -> RecordingStorage:
    if request.param == "local":
        return LocalStorage(recordings_root)
    s3: S3Storage = request.getfixturevalue("s3_storage")
    return s3


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "incoming" / "call-1.wav"
    path.parent.mkdir()
    path.write_bytes(b"RIFF" + bytes(range(256)) * 40)
    return path


async def test_put_then_get_returns_the_same_bytes(
    storage: RecordingStorage, wav: Path, tmp_path: Path
) -> None:
    uri = await storage.put(wav, "2026/05/04/call-1.wav")
    assert _read(wav)  # put copies; the caller decides when to drop its file
    assert await storage.exists(uri)
    dest = tmp_path / "back" / "x.wav"
    await storage.get(uri, dest)
    assert _read(dest) == _read(wav)


async def test_delete_is_final_and_repeatable(storage: RecordingStorage, wav: Path) -> None:
    uri = await storage.put(wav, "2026/05/04/call-1.wav")
    await storage.delete(uri)
    assert not await storage.exists(uri)
    await storage.delete(uri)  # already gone: not an error


async def test_uris_name_their_storage(storage: RecordingStorage, wav: Path) -> None:
    uri = await storage.put(wav, "a/b.wav")
    expected = "file://" if storage.kind is StorageKind.LOCAL else "s3://povtor-recordings/"
    assert uri.startswith(expected)
    assert uri.endswith("a/b.wav")


@pytest.mark.parametrize("key", ["", "/abs.wav", "../up.wav", "a//b.wav", "a/./b.wav"])
async def test_unsafe_keys_are_refused(storage: RecordingStorage, wav: Path, key: str) -> None:
    with pytest.raises(ValueError, match="bad storage key"):
        await storage.put(wav, key)


async def test_foreign_uris_are_refused(storage: RecordingStorage, tmp_path: Path) -> None:
    other = (tmp_path / "elsewhere.wav").as_uri()
    for uri in (other, "s3://another-bucket/a.wav", "http://example.com/a.wav"):
        with pytest.raises(StorageError):
            await storage.delete(uri)


async def test_local_put_of_a_file_already_in_place_is_a_no_op(recordings_root: Path) -> None:
    storage = LocalStorage(recordings_root)
    path = recordings_root / "a" / "b.wav"
    path.parent.mkdir()
    path.write_bytes(b"data")
    assert await storage.put(path, "a/b.wav") == path.as_uri()
    assert path.read_bytes() == b"data"


async def test_unreachable_s3_is_a_storage_error(wav: Path) -> None:
    dead = S3Storage(
        "b", endpoint_url="http://127.0.0.1:9", access_key="k", secret_key="s", max_attempts=1
    )
    with pytest.raises(StorageError, match="upload"):
        await dead.put(wav, "x.wav")


def test_settings_choose_s3_only_with_a_bucket(tmp_path: Path) -> None:
    local = Settings(data_dir=tmp_path, recordings=RecordingSettings())
    assert isinstance(storage_from_settings(local), LocalStorage)
    assert set(storages_from_settings(local)) == {StorageKind.LOCAL}
    s3 = Settings(data_dir=tmp_path, recordings=RecordingSettings(s3_bucket="b"))
    assert isinstance(storage_from_settings(s3), S3Storage)
    assert set(storages_from_settings(s3)) == {StorageKind.LOCAL, StorageKind.S3}


def test_keys_are_dated_by_the_call_start() -> None:
    from datetime import UTC, datetime

    assert recording_key("abc", datetime(2026, 1, 9, 23, 0, tzinfo=UTC)) == "2026/01/09/abc.wav"
