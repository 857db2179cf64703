"""Where finished recordings live: a local folder (default) or an S3-compatible bucket.

URIs are self-describing: ``file:///abs/path.wav`` or ``s3://bucket/key``. ``put`` copies (the
caller's file is left alone); ``delete`` of something already gone is not an error, so sweeps
can run again after a crash.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

from povtor.errors import ConfigError, PovtorError
from povtor.private import make_private_dir
from povtor.settings import RecordingSettings, Settings
from voice.call_records import StorageKind

if TYPE_CHECKING:
    from collections.abc import Callable


class StorageError(PovtorError):
    """The recording storage failed or refused a request."""


class RecordingStorage(Protocol):
    kind: StorageKind

    async def put(self, local_path: Path, key: str) -> str: ...

    async def get(self, uri: str, dest: Path) -> None: ...

    async def delete(self, uri: str) -> None: ...

    async def exists(self, uri: str) -> bool: ...


def recording_key(call_uuid: str, started_at: datetime) -> str:
    """``YYYY/MM/DD/<uuid>.wav`` by the call's UTC start date."""
    return f"{started_at:%Y/%m/%d}/{call_uuid}.wav"


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad storage key {key!r}")
    return key


def _copy_durably(src: Path, dest: Path) -> None:
    """Hard-link, or copy to a temporary name, fsync and rename; then fsync the folder."""
    if src.resolve() == dest.resolve():
        return
    make_private_dir(dest.parent)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
        tmp.chmod(0o600)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, dest)
    fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage:
    """Recordings under one folder (``settings.recordings_dir`` by default)."""

    kind = StorageKind.LOCAL

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def path_of(self, uri: str) -> Path:
        """The file behind a ``file://`` URI; refuses anything outside the root."""
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise StorageError(f"not a local recording URI: {uri}")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"{uri} is outside the recordings folder {self.root}")
        return path

    async def put(self, local_path: Path, key: str) -> str:
        dest = self.root / _check_key(key)
        try:
            await asyncio.to_thread(_copy_durably, Path(local_path), dest)
        except OSError as err:
            raise StorageError(f"cannot store {key}: {err}") from err
        return dest.as_uri()

    async def get(self, uri: str, dest: Path) -> None:
        try:
            await asyncio.to_thread(_copy_durably, self.path_of(uri), Path(dest))
        except OSError as err:
            raise StorageError(f"cannot read {uri}: {err}") from err

    async def delete(self, uri: str) -> None:
        path = self.path_of(uri)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as err:
            raise StorageError(f"cannot delete {uri}: {err}") from err

    async def exists(self, uri: str) -> bool:
        return await asyncio.to_thread(self.path_of(uri).is_file)


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, moto...) through boto3 in threads."""

    kind = StorageKind.S3

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        max_attempts: int = 5,
    ) -> None:
        self.bucket = bucket
        self._max_attempts = max_attempts
        self._options: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
            "region_name": region,
        }
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: RecordingSettings) -> S3Storage:
        if not settings.s3_bucket:
            raise ConfigError("POVTOR_RECORDINGS_S3_BUCKET is not set")
        return cls(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            access_key=settings.s3_access_key.get_secret_value()
            if settings.s3_access_key
            else None,
            secret_key=settings.s3_secret_key.get_secret_value()
            if settings.s3_secret_key
            else None,
            region=settings.s3_region,
        )

    def _s3(self) -> Any:
        with self._lock:  # boto3 clients are thread-safe once built; building is not
            if self._client is None:
                import boto3  # heavy: only when S3 is used
                from botocore.config import Config

                retries = {"max_attempts": self._max_attempts, "mode": "standard"}
                config = Config(retries=retries)
                self._client = boto3.client("s3", config=config, **self._options)
            return self._client

    def _key_of(self, uri: str) -> str:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or parsed.netloc != self.bucket or not parsed.path[1:]:
            raise StorageError(f"not a recording URI of bucket {self.bucket}: {uri}")
        return unquote(parsed.path[1:])

    async def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn)
        except (BotoCoreError, ClientError, OSError) as err:
            raise StorageError(f"S3 {what} failed: {err}") from err

    async def put(self, local_path: Path, key: str) -> str:
        key = _check_key(key)
        await self._call(
            f"upload of {key}",
            lambda: self._s3().upload_file(
                str(local_path), self.bucket, key, ExtraArgs={"ContentType": "audio/wav"}
            ),
        )
        return f"s3://{self.bucket}/{key}"

    async def get(self, uri: str, dest: Path) -> None:
        key = self._key_of(uri)
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.tmp")

        def download() -> None:
            make_private_dir(dest.parent)
            self._s3().download_file(self.bucket, key, str(tmp))
            os.replace(tmp, dest)

        await self._call(f"download of {key}", download)

    async def delete(self, uri: str) -> None:
        key = self._key_of(uri)
        await self._call(
            f"delete of {key}", lambda: self._s3().delete_object(Bucket=self.bucket, Key=key)
        )

    async def exists(self, uri: str) -> bool:
        from botocore.exceptions import ClientError

        key = self._key_of(uri)
        try:
            await self._call(
                f"head of {key}", lambda: self._s3().head_object(Bucket=self.bucket, Key=key)
            )
        except StorageError as err:
            cause = err.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
                "404",
                "NoSuchKey",
                "NotFound",
            ):
                return False
            raise
        return True


def storage_from_settings(settings: Settings) -> RecordingStorage:
    """Where new recordings go: S3 when a bucket is configured, else the local folder."""
    if settings.recordings.s3_bucket:
        return S3Storage.from_settings(settings.recordings)
    return LocalStorage(settings.recordings_dir)


def storages_from_settings(settings: Settings) -> dict[StorageKind, RecordingStorage]:
    """Every storage an existing recording may be in (for retention after a switch to S3)."""
    found: dict[StorageKind, RecordingStorage] = {
        StorageKind.LOCAL: LocalStorage(settings.recordings_dir)
    }
    if settings.recordings.s3_bucket:
        found[StorageKind.S3] = S3Storage.from_settings(settings.recordings)
    return found
