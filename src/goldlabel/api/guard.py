"""Request bodies: authenticated before they are read, bounded by route while they are read.

Without this, FastAPI reads and parses a route's whole JSON body before its ``get_actor``
dependency runs: one unauthenticated 300 MB ``POST .../skip`` grew the process by 900 MB before
its 401 (issue 17, item 1). ``RequestGuard`` sits inside ``WebMiddleware`` (which has resolved
the session cookie by then) and in front of every route:

1. A write (POST, PUT, PATCH, DELETE) to ``/api/`` needs credentials before a byte of its body
   is read: a Bearer token is verified here (from the process's token cache, else one database
   read, which fills the cache the route then reads), a cookie session was verified by
   ``WebMiddleware``. Neither: 401, body unread.
2. Every body has a limit by route (``body_limit``): uploads (``.../imports``, ``.../media``,
   ``POST .../items``) get ``max_upload_bytes`` (``POST .../items`` also at most ``max_json_import_bytes``: FastAPI
   parses that JSON in memory; larger imports go through the streamed ``.../imports``), every
   other route ``max_request_bytes``. A declared ``Content-Length`` over it: 413, body unread.
   A body without one (chunked) is counted as it arrives; past the limit the guard answers 413
   itself and tells the app the client left, so nothing more is read or buffered.

The annotate loop's fast lane (``api/fastlane.py``) is in front of all this: it reads a body
only after verifying the token, at most its own ``MAX_BODY_BYTES``, and hands anything else to
the app, where this guard applies. Request bodies are never decompressed (no
``Content-Encoding`` is honoured), so a compressed body cannot outgrow its limit once read.
"""

from __future__ import annotations

import re
from functools import partial

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from goldlabel.api.problems import MEDIA_TYPE, domain_problem_body, problem_body
from goldlabel.config import Settings
from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.json_limits import INT64_MAX, INT64_MIN
from goldlabel.services import users as user_service
from goldlabel.services.context import Context

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Integer path segments and query parameters are ids, cursors and sizes: past 64 bits none can
# exist, and the database drivers fail on them (a 500 before this guard: issue 17, item 8).
_LONG_NUMBER = re.compile(rb"[0-9]{19,}")
_INT_QUERY = re.compile(rb"(?:^|&)(after|annotator_id|limit|item_id|user_id|project_id)=(-?[0-9]{19,})(?:&|$)")
# File uploads: an import file, or media files (one item each).
_UPLOADS = re.compile(r"/api/v1/projects/[^/]+/(?:imports|media)")
_ITEMS = re.compile(r"/api/v1/projects/[^/]+/items")


def body_limit(settings: Settings, method: str, path: str) -> tuple[int, str]:
    """The most bytes a request body to this route may have, and the code of its 413."""
    if method == "POST":
        if _UPLOADS.fullmatch(path):
            return settings.max_upload_bytes, "upload_too_large"
        if _ITEMS.fullmatch(path):
            return min(settings.max_upload_bytes, settings.max_json_import_bytes), "upload_too_large"
    return settings.max_request_bytes, "body_too_large"


def _bad_target(scope: Scope) -> list[Message] | None:
    """A 404 for an id past 64 bits in the path, a 422 for one in the query or for a NUL
    character in either (PostgreSQL refuses NUL in text), else None."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    if b"%00" in raw_path or b"\x00" in raw_path or b"%00" in query:
        return _problem(422, "nul_character", "the URL may not contain NUL (%00) characters")
    if _LONG_NUMBER.search(raw_path) is not None:
        for segment in raw_path.split(b"/"):
            # Negative too: -2**70 in a path reached the driver (a 500 found by the fuzzer).
            digits = segment.removeprefix(b"-")
            if digits.isdigit() and (len(digits) > 19 or not INT64_MIN <= int(segment) <= INT64_MAX):
                return _problem(404, "not_found", f"no object has the id {segment.decode()} (ids are 64-bit)")
    if _LONG_NUMBER.search(query) is not None:
        for found in _INT_QUERY.finditer(query):
            if len(found.group(2).removeprefix(b"-")) > 19 or not INT64_MIN <= int(found.group(2)) <= INT64_MAX:
                name = found.group(1).decode()
                return _problem(422, "validation_failed", f"{name} must be at most {INT64_MAX}", [
                    {"loc": ["query", name], "code": "integer_out_of_range",
                     "message": f"integers must lie in [{INT64_MIN}, {INT64_MAX}]"}])
    return None


def _problem(status: int, code: str, detail: str, errors: list | None = None) -> list[Message]:
    body = orjson.dumps(problem_body(status, code, detail, errors))
    return _messages(status, body, [])


def _messages(status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> list[Message]:
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()), *extra]
    return [{"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body}]


def too_large(limit: int, code: str) -> list[Message]:
    return _problem(413, code, f"the request body is larger than this route's limit of {limit} bytes")


class RequestGuard:
    def __init__(self, app: ASGIApp, *, context: Context) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        declared = -1
        token = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                if value.isdigit():  # a length past 18 digits is past any limit (and int's)
                    declared = int(value) if len(value) < 19 else 1 << 63
            elif key == b"authorization" and value[:7].lower() == b"bearer ":
                token = value[7:].strip().decode("latin-1")
        refusal = _bad_target(scope)
        if refusal is not None:
            await _send_all(send, refusal)
            return
        if method in UNSAFE_METHODS and path.startswith("/api/"):
            refusal = await self._authenticate(scope, token)
            if refusal is not None:
                await _send_all(send, refusal)
                return
        limit, code = body_limit(self.context.settings, method, path)
        if declared > limit:
            await _send_all(send, too_large(limit, code))
            return
        try:
            await self.app(scope, *_bounded(receive, send, limit, code))
        except BodyTooLarge:
            pass  # answered 413 already, as the limit was passed

    async def _authenticate(self, scope: Scope, token: str | None) -> list[Message] | None:
        """None when the request carries valid credentials, else the 401 to send."""
        if token is None:
            state = scope.get("state") or {}
            if state.get("session_actor") is not None:
                return None
            error = GoldlabelError("authentication required: a Bearer token or a session",
                                   code="unauthorized", status=401)
        else:
            # Authentication only: a user who must enrol in two-factor login is refused (or not)
            # by the route's api.deps.get_actor, which knows the path.
            try:
                actor = await run_in_threadpool(partial(user_service.authenticate_token, enrolment_only=True,
                                                        cached=False), self.context, token)
                scope.setdefault("state", {})["token_actor"] = actor  # for api.deps.get_actor
                return None
            except GoldlabelError as exc:
                error = exc
        return _messages(error.status, orjson.dumps(domain_problem_body(error)), [(b"www-authenticate", b"Bearer")])


class BodyTooLarge(Exception):
    """Raised into the app by ``receive`` once a body passes its limit, after the 413 is sent."""


def _bounded(receive: Receive, send: Send, limit: int, code: str) -> tuple[Receive, Send]:
    """``receive`` counting body bytes: past ``limit`` it answers 413 (unless the app has
    started its response) and raises ``BodyTooLarge`` into the app, so it reads no further
    (FastAPI turns an error while it reads a body into a 400, which ``send`` then drops with
    anything else the app answers after the 413)."""
    received = 0
    started = False
    refused = False

    async def bounded_receive() -> Message:
        nonlocal received, refused
        if refused:
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                refused = True
                if not started:
                    await _send_all(send, too_large(limit, code))
                raise BodyTooLarge
        return message

    async def tracked_send(message: Message) -> None:
        nonlocal started
        if refused:
            return
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    return bounded_receive, tracked_send


async def _send_all(send: Send, messages: list[Message]) -> None:
    for message in messages:
        await send(message)
