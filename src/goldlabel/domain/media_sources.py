"""Which image sources an item may name: one rule for import and for the annotate workspace.

The workspace shows an item's image with ``<img src>``; an import that accepts a URL the workspace
then refuses leaves an item nobody can answer. So both sides apply this rule (the browser's copy
is ``safeImageUrl`` in ``web/static/js/dom.js``; ``tests/browser/test_image_sources.py`` runs
both on one table of URLs and keeps them in step).

Allowed: the same-origin media route that media import writes
(``/api/v1/projects/<id>/media/<sha256>.<ext>``), ``https:`` URLs, base64 ``data:image/...`` URIs
of raster types or SVG (an ``<img>`` never runs script inside an SVG), and ``http:`` only for the
hosts in the ``media_http_hosts`` setting (e.g. an intranet image server).

Objects referenced in place, which the server fetches and serves same-origin, for the schemes the
``media_fetch_schemes`` setting enables: ``s3://bucket/key`` (from the configured S3 endpoint,
through the outbound guard) and ``file:///path`` (a file under the ``media_fetch_root`` setting).
The browser never sees those URLs: an import keeps the URL in the media store and gives the item
the same-origin media path of the reference (``services.media.reference_in_place``), which the
media route serves by fetching the object (``services.media.fetch_reference``). Other fsspec
schemes (``gs://``, ``az://``, ...) are refused (``fetch_scheme_not_allowed``): their clients
bring their own transports, which do not go through the guard.
"""

from __future__ import annotations

import re
from collections.abc import Collection

MEDIA_PATH = re.compile(r"^/api/v1/projects/[0-9]+/media/[0-9a-f]{64}\.[a-z0-9]{1,8}$")
DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*$",
                        re.IGNORECASE)
HTTPS = re.compile(r"^https://[^/?#\s\\]+", re.IGNORECASE)
HTTP_HOST = re.compile(r"^http://([^/?#\s\\@]+)(?:[/?#]|$)", re.IGNORECASE)
#: ``s3://bucket/key``: a bucket name as S3 allows it, a key without control characters
S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([^\x00-\x1f\x7f]+)$")
#: ``file:///absolute/path`` without control characters (no host: files of the server only)
FILE_URL = re.compile(r"^file://(/[^\x00-\x1f\x7f]+)$")
#: the schemes of fsspec URLs (and file:) the server could be asked to fetch
FETCH_SCHEMES = frozenset({"s3", "file"})
_OTHER_FSSPEC = re.compile(r"^(s3a|gs|gcs|az|abfs|abfss|adl|hdfs|hf|oss|r2|webdav|sftp|ftp|smb)://", re.IGNORECASE)

MESSAGES = {
    "not_a_string": "an image source must be a URL string",
    "http_host_not_allowed": "http: image URLs are allowed only for the hosts in the "
                             "media_http_hosts setting; use https:",
    "bad_data_uri": "a data: URI must be data:image/(png|jpeg|gif|webp|svg+xml);base64,...",
    "bad_media_path": "a same-origin path must be a media URL /api/v1/projects/<id>/media/<sha256>.<ext>",
    "unsupported_scheme": "an image source must be an https: URL, a media path or a data:image URI "
                          "(or an s3:// / file:// object in place, with the media_fetch_schemes setting)",
    "fetch_scheme_not_allowed": "the server fetches objects in place only for the schemes of the "
                                "media_fetch_schemes setting (s3, file)",
    "bad_fetch_url": "an object in place is s3://bucket/key or file:///absolute/path (no '..')",
}


def parse_fetch_schemes(value: str | Collection[str]) -> frozenset[str]:
    """The schemes the server fetches in place, from the setting; an unknown one raises ValueError."""
    items = value.split(",") if isinstance(value, str) else value
    schemes = frozenset(s.strip().lower() for s in items if s and s.strip())
    unknown = schemes - FETCH_SCHEMES
    if unknown:
        raise ValueError(f"media_fetch_schemes: {', '.join(sorted(unknown))} not supported; "
                         f"one of {', '.join(sorted(FETCH_SCHEMES))}")
    return schemes


def fetched_scheme(value: object) -> str | None:
    """``"s3"`` or ``"file"`` when ``value`` is a well-formed object-in-place URL, else None."""
    if not isinstance(value, str):
        return None
    if S3_URL.match(value):
        return "s3"
    match = FILE_URL.match(value)
    if match and ".." not in match.group(1).split("/"):
        return "file"
    return None


def parse_hosts(value: str | Collection[str]) -> frozenset[str]:
    """The http hosts from a setting: a comma-separated string or a list; lower-cased."""
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(h.strip().lower() for h in items if h and h.strip())


def check_image_source(value: object, allowed_http_hosts: Collection[str] = (),
                       fetch_schemes: Collection[str] = ()) -> str | None:
    """None when ``value`` may be an item's image, else a stable error code. An object in place
    (s3://, file://) is allowed for the ``fetch_schemes`` the server fetches; the import then
    gives the item its same-origin path, so the workspace never shows such a URL itself."""
    if not isinstance(value, str):
        return "not_a_string"
    url = value.strip()
    lower = url.lower()
    # With no scheme enabled the answer is the browser's (dom.js): unsupported_scheme, below.
    if fetch_schemes and lower.startswith(("s3://", "file:")):
        scheme = fetched_scheme(url)
        if scheme is None:
            return "bad_fetch_url"
        return None if scheme in fetch_schemes else "fetch_scheme_not_allowed"
    if fetch_schemes and _OTHER_FSSPEC.match(url):
        return "fetch_scheme_not_allowed"
    if MEDIA_PATH.match(url):
        return None
    if HTTPS.match(url):
        return None
    if lower.startswith("data:"):
        return None if DATA_IMAGE.match(url) else "bad_data_uri"
    if lower.startswith("http://"):
        m = HTTP_HOST.match(url)
        # The host without its port, read the same way as dom.js does (no URL parser there).
        host = re.sub(r":[0-9]*$", "", m.group(1).lower()) if m else ""
        if host and host in {h.lower() for h in allowed_http_hosts}:
            return None
        return "http_host_not_allowed"
    if url.startswith("/") and not url.startswith("//"):
        return "bad_media_path"
    return "unsupported_scheme"
