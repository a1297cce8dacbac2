"""Which image sources an item may name: one rule for import and for the annotate workspace.

The workspace shows an item's image with ``<img src>``; an import that accepts a URL the workspace
then refuses leaves an item nobody can answer. So both sides apply this rule (the browser's copy
is ``safeImageUrl`` in ``web/static/js/dom.js``; ``tests/browser/test_image_sources.py`` runs
both on one table of URLs and keeps them in step).

Allowed: the same-origin media route that media import writes
(``/api/v1/projects/<id>/media/<sha256>.<ext>``), ``https:`` URLs, base64 ``data:image/...`` URIs
of raster types or SVG (an ``<img>`` never runs script inside an SVG), and ``http:`` only for the
hosts in the ``media_http_hosts`` setting (e.g. an intranet image server).
"""

from __future__ import annotations

import re
from collections.abc import Collection

MEDIA_PATH = re.compile(r"^/api/v1/projects/[0-9]+/media/[0-9a-f]{64}\.[a-z0-9]{1,8}$")
DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*$",
                        re.IGNORECASE)
HTTPS = re.compile(r"^https://[^/?#\s\\]+", re.IGNORECASE)
HTTP_HOST = re.compile(r"^http://([^/?#\s\\@]+)(?:[/?#]|$)", re.IGNORECASE)

MESSAGES = {
    "not_a_string": "an image source must be a URL string",
    "http_host_not_allowed": "http: image URLs are allowed only for the hosts in the "
                             "media_http_hosts setting; use https:",
    "bad_data_uri": "a data: URI must be data:image/(png|jpeg|gif|webp|svg+xml);base64,...",
    "bad_media_path": "a same-origin path must be a media URL /api/v1/projects/<id>/media/<sha256>.<ext>",
    "unsupported_scheme": "an image source must be an https: URL, a media path or a data:image URI",
}


def parse_hosts(value: str | Collection[str]) -> frozenset[str]:
    """The http hosts from a setting: a comma-separated string or a list; lower-cased."""
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(h.strip().lower() for h in items if h and h.strip())


def check_image_source(value: object, allowed_http_hosts: Collection[str] = ()) -> str | None:
    """None when the workspace may show ``value`` as an image, else a stable error code."""
    if not isinstance(value, str):
        return "not_a_string"
    url = value.strip()
    if MEDIA_PATH.match(url):
        return None
    if HTTPS.match(url):
        return None
    lower = url.lower()
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
