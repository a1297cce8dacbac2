"""Objects items reference in place: ``s3://bucket/key`` and ``file:///path`` (the schemes the
``media_fetch_schemes`` setting enables; the rule is ``domain.media_sources``).

The browser never sees such a URL. An import keeps it in the media store as a reference object
(``<project>/refs/<sha256>``) and gives the item field the same-origin media path
``/api/v1/projects/<id>/media/<sha256>.<ext>`` of that reference (the original URL stays in the
item data as ``<field>_source``). The media route, finding no stored file under that name,
reads the reference and fetches the object, every time (nothing is copied: the object stays
where it lies): ``s3://`` with a SigV4-signed GET to the configured endpoint
(``media_fetch_s3_endpoint_url``, else the media store's, else AWS) through the one outbound
guard (``services.outbound_guard``, allow-list ``media_fetch_allowed_networks``); ``file://``
from under ``media_fetch_root``, refusing any path (symbolic links included) that leads out of
it. An object is held in memory while it is served, up to ``media_fetch_max_bytes``.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from goldlabel.domain.errors import FieldError, GoldlabelError, not_found
from goldlabel.domain.media_sources import FILE_URL, S3_URL, fetched_scheme, parse_fetch_schemes
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


def fetch_reference(ctx: Context, url: str) -> bytes:
    """The bytes of an object in place. 404 when it is not there; 502 with ``media_fetch_refused``
    (the guard or the settings refuse it), ``media_fetch_failed`` (the store answered an error)
    or ``media_too_large``."""
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
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError as exc:
            raise not_found("media") from exc
        except OSError as exc:
            raise GoldlabelError(f"cannot read the object: {exc}", code="media_fetch_failed", status=502) from exc
        if len(data) > limit:
            raise _too_large(limit)
        return data
    return _fetch_s3(ctx, url, limit)


def _too_large(limit: int) -> GoldlabelError:
    return GoldlabelError(f"the object is larger than media_fetch_max_bytes ({limit} bytes)",
                          code="media_too_large", status=502)


def _fetch_s3(ctx: Context, url: str, limit: int) -> bytes:
    import boto3
    import httpx
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    from goldlabel.services.outbound_guard import guarded_client

    settings = ctx.settings
    match = S3_URL.match(url)
    if match is None:  # fetched_scheme said s3: unreachable
        raise GoldlabelError("not an s3:// URL", code="media_fetch_refused", status=502)
    bucket, key = match.groups()
    region = settings.media_s3_region or "us-east-1"
    endpoint = (settings.media_fetch_s3_endpoint_url or settings.media_s3_endpoint_url
                or f"https://s3.{region}.amazonaws.com").rstrip("/")
    target = f"{endpoint}/{bucket}/{quote(key, safe='/~')}"
    request = AWSRequest(method="GET", url=target)
    credentials = boto3.Session().get_credentials()
    if credentials is not None:  # none: a public bucket, read unsigned
        S3SigV4Auth(credentials.get_frozen_credentials(), "s3", region).add_auth(request)
    # One byte over the limit tells an object that is too large from one that just fits.
    with guarded_client(settings.media_fetch_allowed_networks, timeout=30.0,
                        max_response_bytes=limit + 1) as client:
        try:
            response = client.get(target, headers=dict(request.headers.items()))
        except OutboundRefused as exc:
            raise GoldlabelError(f"the outbound guard refused {endpoint}: {exc} (setting "
                                 "media_fetch_allowed_networks)", code="media_fetch_refused", status=502) from exc
        except httpx.HTTPError as exc:
            raise GoldlabelError(f"fetching {url} failed: {exc}", code="media_fetch_failed", status=502) from exc
    if response.status_code == 404:
        raise not_found("media")
    if response.status_code != 200:
        raise GoldlabelError(f"the S3 endpoint answered {response.status_code} for {url}",
                             code="media_fetch_failed", status=502)
    if len(response.content) > limit:
        raise _too_large(limit)
    return response.content
