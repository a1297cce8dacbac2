"""ASGI plumbing shared by the two HTTP entry points, api/ (the annotate loop's fast lane) and
web/ (the session and CSRF middleware): the security headers every response carries, and reading
a bounded request body that can then be handed on unchanged.

A layer of its own between api/ | web/ and services/ (pyproject.toml, ``[tool.importlinter]``),
so that neither entry point imports the other. Session cookies and CSRF tokens, which hold no
HTTP framework, are in ``services/sessions.py``.
"""

from __future__ import annotations

from starlette.types import Message, Receive

# One directive a line, each with room for a comment: FLY002's single f-string would lose that.
CONTENT_SECURITY_POLICY = "; ".join(  # noqa: FLY002
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Item images come from anywhere over https, or inline as data: URLs.
        "img-src 'self' data: https:",
        # Item audio and video: our media route, or https (the same sources as images but data:).
        "media-src 'self' https:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


async def read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, read to its end or until it passes ``limit`` bytes (or the client
    leaves); ``complete`` says which. What was read can be handed on with ``replay``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def replay(body: bytes, receive: Receive, *, more_body: bool) -> Receive:
    """A receive that gives what ``read_body`` read first, then whatever the client still sends."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more_body}
        return await receive()

    return replayed
