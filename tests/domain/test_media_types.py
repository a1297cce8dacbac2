"""Media types come from the bytes; scriptable content never renders inline."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from goldlabel.domain.media_types import sniff


def image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "content_type"), [
    ("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp"),
    ("BMP", "image/bmp"),
])
def test_images_are_recognised_from_their_bytes(fmt, content_type):
    kind = sniff(image_bytes(fmt)[:512])
    assert (kind.content_type, kind.kind, kind.inline) == (content_type, "image", True)


@pytest.mark.parametrize(("head", "content_type", "kind"), [
    (b"%PDF-1.7\n", "application/pdf", "pdf"),
    (b"ID3\x04\x00", "audio/mpeg", "audio"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav", "audio"),
    (b"OggS\x00\x02", "audio/ogg", "audio"),
    (b"\x00\x00\x00\x18ftypmp42", "video/mp4", "video"),
    (b"\x1aE\xdf\xa3\x9fB\x86", "video/webm", "video"),
    ("plain words, ünïcødé".encode(), "text/plain; charset=utf-8", "text"),
])
def test_other_media(head, content_type, kind):
    assert (sniff(head).content_type, sniff(head).kind) == (content_type, kind)


@pytest.mark.parametrize("head", [
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b"<!DOCTYPE html><html><script>alert(1)</script>",
    b"\xef\xbb\xbf  <html>", b"<?xml version='1.0'?><svg/>", b"\x00\x01binary",
])
def test_markup_and_unknown_bytes_are_attachments(head):
    kind = sniff(head)
    assert kind.inline is False
    assert kind.content_type == "application/octet-stream"


def test_a_name_cannot_change_the_type():
    # The sniffer never sees a name: HTML saved as cat.png is still not an image.
    assert sniff(b"<html><body>cat.png</body></html>").kind == "other"
