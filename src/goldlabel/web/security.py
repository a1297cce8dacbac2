"""The web layer's one middleware: resolve the session cookie to an actor, enforce CSRF on
cookie-authenticated writes, and add security headers to every response.

Rules, in order, for each HTTP request:

1. ``Authorization: Bearer ...`` present: the API authenticates with the token; the cookie is not
   read and no CSRF token is needed (a cross-site page cannot set that header).
2. Otherwise a valid ``gl_session`` cookie sets ``request.state.session_actor`` (read by
   ``api.deps.get_actor``) and ``request.state.session``.
3. A state-changing request (POST, PUT, PATCH, DELETE) that a session authenticates, and the
   login form post (always: with the pre-session cookie the login page set), must carry the CSRF
   token: the ``X-CSRF-Token`` header (JavaScript) or a ``csrf_token`` field of an
   ``application/x-www-form-urlencoded`` body (HTML forms). Enforced
   here, once, so no route can forget it.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from goldlabel.asgi import SECURITY_HEADERS, read_body, replay
from goldlabel.services.context import Context
from goldlabel.services.sessions import (
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    SessionSigner,
    load_session_actor,
)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LOGIN_PATHS = frozenset({"/login", "/login/code"})
MAX_FORM_BYTES = 1024 * 1024

class WebMiddleware:
    def __init__(self, app: ASGIApp, *, context: Context, signer: SessionSigner,
                 csp_exempt_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.context = context
        self.signer = signer
        # FastAPI's Swagger page needs inline scripts; it gets nosniff but not our CSP.
        self.csp_exempt_paths = csp_exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_headers(scope, send)
        path: str = scope["path"]
        if path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["session_actor"] = None
        state["session"] = None
        if _has_bearer(scope):
            # Rule 1: the API authenticates the token; no cookie, session or CSRF work.
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = cookie_parser(headers.get("cookie", ""))
        session = self.signer.verify(cookies.get(SESSION_COOKIE))
        if session is not None:
            # One read per request, so an ended session or a suspension is seen at once (the
            # actor cache serves only the annotate loop's fast lane, which re-checks it).
            actor = await run_in_threadpool(load_session_actor, self.context, session)
            if actor is not None:
                state["session"] = session
                state["session_actor"] = actor
        if scope["method"] in UNSAFE_METHODS:
            if state["session"] is not None:
                nonce: str | None = state["session"].nonce
            elif path in LOGIN_PATHS:
                # Login CSRF: a login without the pre-session cookie the login page set (and
                # its token) is refused, so a page elsewhere cannot log a victim's browser into
                # the attacker's account (issue 17, item 4).
                nonce = cookies.get(PRESESSION_COOKIE) or ""
            else:
                nonce = None  # no ambient credentials: nothing a forged request could use
            if nonce is not None:
                token = headers.get(CSRF_HEADER)
                if token is None and _is_form(headers):
                    declared = headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
                        await _reject(scope, send, 413, "form too large")
                        return
                    body, complete = await read_body(receive, MAX_FORM_BYTES)
                    if len(body) > MAX_FORM_BYTES:
                        await _reject(scope, send, 413, "form too large")
                        return
                    token = _form_field(body, CSRF_FIELD)
                    receive = replay(body, receive, more_body=not complete)
                if not self.signer.check_csrf(nonce, token):
                    await _reject(scope, send, 403, "missing or invalid CSRF token; reload the page")
                    return
        await self.app(scope, receive, send)

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        exempt = scope["path"] in self.csp_exempt_paths

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if exempt:
                    extra = [(k, v) for k, v in extra if k == b"x-content-type-options"]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        return send_with_headers


def _has_bearer(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"authorization":
            return value[:7].lower() == b"bearer "
    return False


def _is_form(headers: Headers) -> bool:
    return headers.get("content-type", "").split(";")[0].strip() == "application/x-www-form-urlencoded"


def _form_field(body: bytes, name: str) -> str | None:
    values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(name)
    return values[0] if values else None


async def _reject(scope: Scope, send: Send, status: int, detail: str) -> None:
    """A problem+json for API paths, a small HTML page for the others."""
    code = "csrf_failed" if status == 403 else "too_large"
    if scope["path"].startswith("/api/"):
        body = json.dumps(
            {"type": f"https://goldlabel.dev/problems/{code}", "title": code.replace("_", " "),
             "status": status, "detail": detail, "code": code, "errors": []}
        ).encode()
        content_type = b"application/problem+json"
    else:
        body = (
            "<!doctype html><meta charset=utf-8><title>Request refused</title>"
            f"<h1>Request refused</h1><p>{escape(detail)}</p><p><a href=\"/\">Back to goldlabel</a></p>"
        ).encode()
        content_type = b"text/html; charset=utf-8"
    headers: list[Any] = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
