"""The media store: where image, audio, video and PDF files live, never inside item JSON.

Objects are content-addressed per project: ``<project_id>/<sha256[:2]>/<sha256>``. The same
bytes imported twice are stored once, and an object never changes, so it can be cached forever.
Two backends behind one interface, with one test suite: a local directory (the default, zero
set-up) and S3-compatible object storage (boto3; any S3-protocol server).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 256 * 1024


def object_key(project_id: int, sha256: str) -> str:
    return f"{int(project_id)}/{sha256[:2]}/{sha256}"


class MediaStore(Protocol):
    def exists(self, key: str) -> bool: ...
    def put(self, key: str, source: BinaryIO, size: int) -> None: ...
    def size(self, key: str) -> int | None: ...
    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...
    def signed_url(self, key: str, ttl_s: int, content_type: str, disposition: str) -> str | None: ...


class LocalMediaStore:
    """Files under ``root``; a put writes a temporary file and renames it (no torn objects)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):  # keys are built here; refuse all the same
            raise ValueError(f"media key {key!r} escapes the store")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def put(self, key: str, source: BinaryIO, size: int) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes [start, end) of the object, in chunks."""
        with self._path(key).open("rb") as f:
            f.seek(start)
            left = None if end is None else end - start
            while left is None or left > 0:
                chunk = f.read(CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def signed_url(self, key: str, ttl_s: int, content_type: str, disposition: str) -> str | None:
        return None  # a local directory has no URL of its own: the server proxies it


class S3MediaStore:
    """An S3 bucket (AWS or any S3-protocol server: MinIO, Ceph, moto) through boto3."""

    def __init__(self, bucket: str, *, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def put(self, key: str, source: BinaryIO, size: int) -> None:
        # upload_fileobj streams in parts above its threshold: memory stays bounded.
        self.client.upload_fileobj(source, self.bucket, self._key(key))

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def signed_url(self, key: str, ttl_s: int, content_type: str, disposition: str) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key), "ResponseContentType": content_type,
                    "ResponseContentDisposition": disposition},
            ExpiresIn=ttl_s,
        )
        return url
