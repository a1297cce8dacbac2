"""The one image source rule shared by import and the workspace (dom.js runs the same table in
tests/browser/test_image_sources.py)."""

from __future__ import annotations

import pytest

from goldlabel.config import Settings
from goldlabel.domain.media_sources import check_image_source, parse_hosts

SHA = "0123456789abcdef" * 4
HOSTS = ("images.lan",)

# (value, expected code with HOSTS allowed)
TABLE = [
    (f"/api/v1/projects/7/media/{SHA}.png", None),
    (f"  /api/v1/projects/7/media/{SHA}.jpg ", None),
    ("https://cdn.example/a.jpg", None),
    ("HTTPS://cdn.example/a.jpg?x=1", None),
    ("data:image/png;base64,iVBORw0KGgo=", None),
    ("data:image/svg+xml;base64,PHN2Zz4=", None),
    ("http://images.lan/a.jpg", None),
    ("http://IMAGES.lan:8080/a.jpg", None),
    ("http://images.lan.evil.example/a.jpg", "http_host_not_allowed"),
    ("http://user@images.lan/a.jpg", "http_host_not_allowed"),
    ("http://cdn.example/a.jpg", "http_host_not_allowed"),
    ("https://", "unsupported_scheme"),
    ("javascript:alert(1)", "unsupported_scheme"),
    ("file:///etc/passwd", "unsupported_scheme"),
    ("//evil.example/a.png", "unsupported_scheme"),
    ("a.jpg", "unsupported_scheme"),
    ("", "unsupported_scheme"),
    ("/static/a.png", "bad_media_path"),
    (f"/api/v1/projects/7/media/{SHA}.png/../../x", "bad_media_path"),
    ("data:text/html,<script>alert(1)</script>", "bad_data_uri"),
    ("data:image/png,rawbytes", "bad_data_uri"),
    ("data:image/bmp;base64,AAAA", "bad_data_uri"),
    (3, "not_a_string"),
]


@pytest.mark.parametrize(("value", "code"), TABLE)
def test_image_source_rule(value, code):
    assert check_image_source(value, HOSTS) == code


def test_http_needs_a_configured_host():
    assert check_image_source("http://images.lan/a.jpg") == "http_host_not_allowed"


def test_setting_reads_a_comma_separated_list_from_the_environment():
    settings = Settings.from_env({"GOLDLABEL_MEDIA_HTTP_HOSTS": " Images.lan, cdn.lan ,"},
                                 secret_key="x")
    assert parse_hosts(settings.media_http_hosts) == {"images.lan", "cdn.lan"}
    assert parse_hosts(Settings(secret_key="x").media_http_hosts) == frozenset()
