"""What a media file is, read from its first bytes, never from its name.

A name can lie (``cat.png`` holding HTML); the bytes decide the Content-Type the server sends and
whether a browser may render the file inline. Only passive types render inline: raster images,
audio, video and PDF. Anything that can run script (SVG, HTML, XML) or is unknown is served as
an attachment.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bytes enough to tell every type below apart.
SNIFF_BYTES = 512


@dataclass(frozen=True, slots=True)
class MediaType:
    content_type: str
    kind: str  # image | audio | video | pdf | text | other
    extension: str
    inline: bool  # safe to render in the page (no script can run in it)


_OCTET = MediaType("application/octet-stream", "other", "bin", False)
_TEXT = MediaType("text/plain; charset=utf-8", "text", "txt", False)


def sniff(head: bytes) -> MediaType:
    """The media type of a file that starts with ``head`` (its first SNIFF_BYTES bytes)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaType("image/png", "image", "png", True)
    if head.startswith(b"\xff\xd8\xff"):
        return MediaType("image/jpeg", "image", "jpg", True)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return MediaType("image/gif", "image", "gif", True)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaType("image/webp", "image", "webp", True)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return MediaType("audio/wav", "audio", "wav", True)
    if head[:2] == b"BM" and len(head) > 14:
        return MediaType("image/bmp", "image", "bmp", True)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return MediaType("image/tiff", "image", "tif", False)  # browsers do not render TIFF
    if head.startswith(b"%PDF-"):
        return MediaType("application/pdf", "pdf", "pdf", True)
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MediaType("audio/mpeg", "audio", "mp3", True)
    if head.startswith(b"OggS"):
        return MediaType("audio/ogg", "audio", "ogg", True)
    if head.startswith(b"fLaC"):
        return MediaType("audio/flac", "audio", "flac", True)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return MediaType("audio/mp4", "audio", "m4a", True)
        if brand == b"qt  ":
            return MediaType("video/quicktime", "video", "mov", True)
        return MediaType("video/mp4", "video", "mp4", True)
    if head.startswith(b"\x1aE\xdf\xa3"):
        return MediaType("video/webm", "video", "webm", True)
    return _text_or_octet(head)


def _text_or_octet(head: bytes) -> MediaType:
    if b"\x00" in head:
        return _OCTET
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed bytes is still text.
        if exc.start < len(head) - 3:
            return _OCTET
        text = head[: exc.start].decode("utf-8")
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith(("<?xml", "<svg", "<!doctype", "<html", "<script", "<")):
        # Markup can carry script: never inline, never as text/html.
        return MediaType("application/octet-stream", "other", "bin", False)
    return _TEXT
