"""Objects items reference in place: ``s3://bucket/key`` and ``file:///path`` (the schemes the
``media_fetch_schemes`` setting enables; the rule is ``domain.media_sources``).

The browser never sees such a URL. An import keeps it in the media store as a reference object
(``<project>/refs/<sha256>``) and gives the item field the same-origin media path
``/api/v1/projects/<id>/media/<sha256>.<ext>`` of that reference (the original URL stays in the
item data as ``<field>_source``). The media route, finding no stored file under that name,
reads the reference and opens the object, every time (nothing is copied: the object stays
where it lies): ``s3://`` with a SigV4-signed GET to the configured endpoint
(``media_fetch_s3_endpoint_url``, else the media store's, else AWS) through the one outbound
guard (``services.outbound_guard``, allow-list ``media_fetch_allowed_networks``); ``file://``
from under ``media_fetch_root``, refusing any path (symbolic links included) that leads out of
it.

An object is streamed, never held whole: the route sends it ``CHUNK`` bytes at a time as they
are read from the open file or the S3 answer, so what a serve holds does not grow with the
object. An HTTP Range is honoured by seeking in the file or by asking S3 for that range (a
``Range`` header). Its type is sniffed from its first bytes. ``media_fetch_max_bytes`` bounds it:
an object whose size (the file's, or S3's Content-Length) passes it is refused before a byte is
sent, and an answer that runs past what it announced is cut. Thumbnails and PDF pages of an
object in place are made from the whole object (Pillow and PDFium read it whole), afresh each
time.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

from goldlabel.domain.errors import FieldError, GoldlabelError, not_found
from goldlabel.domain.media_sources import FILE_URL, S3_URL, fetched_scheme, parse_fetch_schemes
from goldlabel.domain.media_types import SNIFF_BYTES
from goldlabel.domain.webhooks import OutboundRefused
from goldlabel.services.context import Context

_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,5})$")


def reference_key(project_id: int, sha256: str) -> str:
    return f"{int(project_id)}/refs/{sha256}"


def reference_name(url: str) -> str:
    """The media name of a reference: a hash of the URL (apart from content hashes: prefixed)
    and the URL's extension (``bin`` when it has none)."""
    sha = hashlib.sha256(b"ref:" + url.encode("utf-8", "surrogatepass")).hexdigest()
    match = _EXTENSION.search(url.rsplit("/", 1)[-1])
    return f"{sha}.{match.group(1).lower() if match else 'bin'}"


def _file_path(ctx: Context, url: str) -> Path | str:
    """The file of a ``file://`` URL under media_fetch_root, or why it is refused."""
    root_setting = ctx.settings.media_fetch_root
    if not root_setting:
        return "file:// objects need the media_fetch_root setting"
    match = FILE_URL.match(url)
    if match is None:
        return "not a file:/// URL"
    root = Path(root_setting).resolve()
    path = Path(unquote(match.group(1))).resolve()
    if not path.is_relative_to(root):
        return f"{url!r} is not under media_fetch_root"
    return path


def reference_in_place(ctx: Context, project_id: int, data: dict[str, Any], line: int) -> list[FieldError]:
    """Point every top-level field of ``data`` that names an object in place (of an enabled
    scheme) at its same-origin media path, storing the reference; the errors of the ones refused.
    A file:// object must exist under the root; an s3:// one is not fetched here (it may be
    put in the bucket later), only when it is served."""
    schemes = parse_fetch_schemes(ctx.settings.media_fetch_schemes)
    if not schemes:
        return []
    errors: list[FieldError] = []
    for field, value in list(data.items()):
        scheme = fetched_scheme(value)
        if scheme is None or scheme not in schemes:
            continue
        if scheme == "file":
            path = _file_path(ctx, value)
            if isinstance(path, str) or not path.is_file():
                errors.append(FieldError(("data", field), "path_escapes_root" if isinstance(path, str) else
                                         "unreadable_file", path if isinstance(path, str) else
                                         f"no file {value!r} under media_fetch_root", line))
                continue
        name = reference_name(value)
        key = reference_key(project_id, name.split(".", 1)[0])
        if not ctx.media.exists(key):
            raw = value.encode("utf-8", "surrogatepass")
            ctx.media.put(key, io.BytesIO(raw), len(raw))
        source_field = f"{field}_source"
        if source_field not in data:
            data[source_field] = value
        data[field] = f"/api/v1/projects/{int(project_id)}/media/{name}"
    return errors


def load_reference(ctx: Context, project_id: int, sha256: str) -> str | None:
    """The URL a reference object names, None when there is none."""
    key = reference_key(project_id, sha256)
    if not ctx.media.exists(key):
        return None
    return b"".join(ctx.media.read(key)).decode("utf-8", "surrogatepass")


# Objects in place are read and sent this much at a time: what a serve holds in memory.
CHUNK = 256 * 1024


class InPlaceObject:
    """An object in place, open for serving: its ``size``, its first bytes (``head``, to type
    it by) and its bytes in chunks (``read``); ``close`` lets go of the file or the connection."""

    size: int
    head: bytes

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _cut(chunks: Iterable[bytes], skip: int, count: int) -> Iterator[bytes]:
    """``count`` bytes of ``chunks`` after the first ``skip``: no more, whatever the source sends."""
    if count <= 0:
        return
    for chunk in chunks:
        if skip:
            dropped = min(skip, len(chunk))
            chunk, skip = chunk[dropped:], skip - dropped
        if chunk:
            chunk = chunk[:count]
            count -= len(chunk)
            yield chunk
            if count <= 0:
                return


class _FileObject(InPlaceObject):
    def __init__(self, file: BinaryIO, size: int) -> None:
        self._file = file
        self.size = size
        self.head = file.read(SNIFF_BYTES)

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        # Up to the size it had when opened: a file that grows meanwhile is cut there.
        end = self.size if end is None else min(end, self.size)
        self._file.seek(start)
        yield from _cut(iter(partial(self._file.read, CHUNK), b""), 0, end - start)

    def close(self) -> None:
        self._file.close()


def open_reference(ctx: Context, url: str) -> InPlaceObject:
    """Open an object in place for serving (the caller closes it). 404 when it is not there; 502
    with ``media_fetch_refused`` (the guard or the settings refuse it), ``media_fetch_failed`` (the
    store answered an error) or ``media_too_large`` (its size passes media_fetch_max_bytes: told
    before any byte is sent)."""
    settings = ctx.settings
    limit = settings.media_fetch_max_bytes
    scheme = fetched_scheme(url)
    if scheme is None or scheme not in parse_fetch_schemes(settings.media_fetch_schemes):
        raise GoldlabelError(f"the server does not fetch {url.split(':', 1)[0]}: objects (media_fetch_schemes)",
                             code="media_fetch_refused", status=502)
    if scheme == "file":
        path = _file_path(ctx, url)
        if isinstance(path, str):
            raise GoldlabelError(path, code="media_fetch_refused", status=502)
        try:
            file = path.open("rb")
        except FileNotFoundError as exc:
            raise not_found("media") from exc
        except OSError as exc:
            raise GoldlabelError(f"cannot read the object: {exc}", code="media_fetch_failed", status=502) from exc
        try:
            size = os.fstat(file.fileno()).st_size
            if size > limit:
                raise _too_large(limit)
            return _FileObject(file, size)
        except BaseException:
            file.close()
            raise
    return _S3Object(ctx, url, limit)


def _too_large(limit: int) -> GoldlabelError:
    return GoldlabelError(f"the object is larger than media_fetch_max_bytes ({limit} bytes)",
                          code="media_too_large", status=502)


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


class _S3Object(InPlaceObject):
    """An s3:// object, read by SigV4-signed GETs through the outbound guard, streamed. Opening it
    starts the GET of the whole object and reads its first bytes; ``read`` from 0 goes on with
    that answer, a read from further on asks again with a Range (and If-Match the first answer's
    ETag, so both describe the same object)."""

    def __init__(self, ctx: Context, url: str, limit: int) -> None:
        from goldlabel.services.outbound_guard import guarded_client

        settings = ctx.settings
        match = S3_URL.match(url)
        if match is None:  # fetched_scheme said s3: unreachable
            raise GoldlabelError("not an s3:// URL", code="media_fetch_refused", status=502)
        bucket, key = match.groups()
        self._url = url
        self._limit = limit
        self._region = settings.media_s3_region or "us-east-1"
        self._endpoint = (settings.media_fetch_s3_endpoint_url or settings.media_s3_endpoint_url
                          or f"https://s3.{self._region}.amazonaws.com").rstrip("/")
        self._target = f"{self._endpoint}/{bucket}/{quote(key, safe='/~')}"
        self._etag: str | None = None
        self._response: Any = None
        # The guard cuts any answer one byte past the limit, whatever its headers said.
        self._client = guarded_client(settings.media_fetch_allowed_networks, timeout=30.0,
                                      max_response_bytes=limit + 1)
        try:
            response = self._get(None)
            length = response.headers.get("content-length")
            if length is None or not length.isdigit():
                raise GoldlabelError(f"the S3 endpoint sent {url} without a Content-Length",
                                     code="media_fetch_failed", status=502)
            self.size = int(length)
            if self.size > limit:
                raise _too_large(limit)
            self._etag = response.headers.get("etag")
            self._chunks: Iterator[bytes] | None = response.iter_raw(CHUNK)
            first = b""
            for chunk in self._chunks:
                first += chunk
                if len(first) >= SNIFF_BYTES:
                    break
            self._first = first
            self.head = first[:SNIFF_BYTES]
        except BaseException:
            self.close()
            raise

    def _get(self, byte_range: tuple[int, int] | None) -> Any:
        import boto3
        import httpx
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        headers = {}
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
            if self._etag:
                headers["If-Match"] = self._etag
        request = AWSRequest(method="GET", url=self._target, headers=headers)
        credentials = boto3.Session().get_credentials()
        if credentials is not None:  # none: a public bucket, read unsigned
            S3SigV4Auth(credentials.get_frozen_credentials(), "s3", self._region).add_auth(request)
        if self._response is not None:
            self._response.close()
        try:
            self._response = response = self._client.send(
                self._client.build_request("GET", self._target, headers=dict(request.headers.items())),
                stream=True)
        except OutboundRefused as exc:
            raise GoldlabelError(f"the outbound guard refused {self._endpoint}: {exc} (setting "
                                 "media_fetch_allowed_networks)", code="media_fetch_refused", status=502) from exc
        except httpx.HTTPError as exc:
            raise GoldlabelError(f"fetching {self._url} failed: {exc}", code="media_fetch_failed",
                                 status=502) from exc
        if response.status_code == 404:
            raise not_found("media")
        expected = (200,) if byte_range is None else (200, 206)
        if response.status_code not in expected:
            changed = " (it changed while it was served)" if response.status_code == 412 else ""
            raise GoldlabelError(f"the S3 endpoint answered {response.status_code} for {self._url}{changed}",
                                 code="media_fetch_failed", status=502)
        return response

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        end = self.size if end is None else min(end, self.size)
        if end <= start:
            return
        if start == 0 and self._chunks is not None:
            chunks, self._chunks = self._chunks, None
            yield from _cut(chain((self._first,), chunks), 0, end)
            return
        self._chunks = None
        response = self._get((start, end - 1))
        skip = 0
        if response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match is None or int(match.group(1)) != start:
                raise GoldlabelError(f"the S3 endpoint answered another range for {self._url}",
                                     code="media_fetch_failed", status=502)
        else:  # an endpoint that ignores Range sends the whole object: skip to the range
            skip = start
        yield from _cut(response.iter_raw(CHUNK), skip, end - start)

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._client.close()
