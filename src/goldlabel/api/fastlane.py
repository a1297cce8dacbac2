"""The annotate loop's requests, answered without the web framework, for every client.

``POST /api/v1/projects/{id}/next``, ``.../answers``, ``.../skip`` and ``.../release`` are most
of what a running project serves. Through FastAPI each paid for route matching over every route,
dependency solving, the web middleware and a response wrapper: more CPU than the queue's own
SQL (docs/benchmarks.md, "Annotate loop"). This ASGI middleware answers them directly with the
one async use case per action (``services/queue/``, ``*_async``), the same problem+json errors and the
same security headers. The routes in ``api/routes/queue.py`` call the same use cases: they are
the contract (OpenAPI) and the path for what is not plain (validation errors, large bodies).

Browser and API-token clients take this path alike; only how the caller is authenticated
differs, and both answers come from one cache with one revocation rule
(``services.users.cached_token_actor`` / ``cached_session_actor``: entries live at most
``settings.token_cache_s``; a revocation through any process is seen at once, because each use
case's own statements read the user's auth version and raise ``StaleCredentials`` for an actor
verified at an older one, before writing anything: the request then goes to the app, which
reads the credential again and answers 401, 403 or the use case's result):

- ``Authorization: Bearer``: a token of a user the database knows, verified from the cache or,
  on a miss, here by ``users.authenticate_token``, as the app's ``get_actor`` does. (Handing
  every cache miss to the app cost a stall every ``token_cache_s``: the tokens of all
  annotators, cached together, expired together, and each one's next request took the
  framework's path through the thread pool.)
- otherwise the ``gl_session`` cookie with the ``X-CSRF-Token`` header the annotator page
  sends (web/security.py, rules 2 and 3; the signer is services/sessions.py's): a well-signed,
  unexpired cookie whose CSRF token checks out, and a live session (``users.session_actor``, cached as a token is).

Anything refused or unusual (no credentials, a bad token, a missing CSRF token, a body that
does not validate, one past MAX_BODY_BYTES, a long Idempotency-Key) goes to the app unchanged,
which answers it as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError, create_model
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from goldlabel.api.problems import MEDIA_TYPE, domain_problem_body, problem_body
from goldlabel.asgi import SECURITY_HEADERS, read_body, replay
from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.json_limits import MAX_DEPTH
from goldlabel.schemas import AnswerSubmit, LeaseAction
from goldlabel.services import users as user_service
from goldlabel.services.access import StaleCredentials
from goldlabel.services.context import Context
from goldlabel.services.queue import lease as lease_service
from goldlabel.services.queue import submit as submit_service
from goldlabel.services.sessions import SESSION_COOKIE, SessionSigner

T = TypeVar("T")
log = logging.getLogger("goldlabel.api")

_PATH = re.compile(r"/api/v1/projects/([1-9][0-9]{0,17})/(next|answers|skip|release)")
# Larger answers (long texts, many boxes) take the framework's path, bounded there by
# settings.max_request_bytes (api/guard.py).
MAX_BODY_BYTES = 256 * 1024
_MAX_BODY_TEXT = str(MAX_BODY_BYTES).encode()
# Every digit as "0", so that 19 digits in a row are one substring test (C speed, unlike a regex).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
_MAX_BODY_DIGITS = len(_MAX_BODY_TEXT)
# AnswerSubmit's fields and constraints without schemas._In's per-field checks, for bodies that
# cannot need them (see __call__).
_PlainAnswer = create_model(
    "PlainAnswer", __config__=AnswerSubmit.model_config,
    **{name: (field.annotation, field) for name, field in AnswerSubmit.model_fields.items()},
)
IDEMPOTENCY_KEY_MAX = 200

_JSON = [(b"content-type", b"application/json"), *SECURITY_HEADERS]
_PROBLEM = [(b"content-type", MEDIA_TYPE.encode()), *SECURITY_HEADERS]
_EMPTY = list(SECURITY_HEADERS)


class AnnotateFastLane:
    def __init__(self, app: ASGIApp, *, context: Context, signer: SessionSigner | None = None) -> None:
        self.app = app
        self.context = context
        self.signer = signer
        # How requests were served: answered here ("served"; "browser" of them by session
        # cookie), or handed to the app ("app"); actors verified here on a cache miss
        # ("verified"). Where the work ran and how it was made durable: context.backend.counts.
        self.counts = {"served": 0, "browser": 0, "app": 0, "verified": 0}

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.counts["app"] += 1
        await self.app(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        token = None
        cookie = None
        csrf = None
        content_json = False
        idempotency_key = None
        declared = b"0"
        for key, value in scope["headers"]:
            if key == b"authorization":
                if value[:7].lower() == b"bearer ":
                    token = value[7:].strip().decode("latin-1")
            elif key == b"content-type":
                content_json = value.split(b";", 1)[0].strip().lower() == b"application/json"
            elif key == b"idempotency-key":
                idempotency_key = value.decode("latin-1")
            elif key == b"content-length":
                declared = value
            elif key == b"cookie":
                cookie = value
            elif key == b"x-csrf-token":
                csrf = value.decode("latin-1")
        if token:
            actor = user_service.cached_token_actor(self.context, token) or await self._verify_token(token)
        elif cookie is not None and self.signer is not None:
            actor = await self._session_actor(cookie, csrf)
        else:
            actor = None
        if actor is None:
            await self._pass(scope, receive, send)
            return
        self.context.backend.note_client(scope.get("client"))
        project_id = int(match.group(1))
        action = match.group(2)
        if action == "next":
            try:
                await self._next(actor, project_id, send, browser=not token)
            except StaleCredentials:
                self.context.forget_user(actor.id)
                await self._pass(scope, receive, send)
            return
        # A body declared longer than the fast lane takes goes to the app unread: its
        # api.guard.RequestGuard answers 413 past the route's limit before reading.
        # (Digits of equal length compare as numbers; the server refuses a non-numeric length.)
        if (not content_json or len(declared) > _MAX_BODY_DIGITS
                or (len(declared) == _MAX_BODY_DIGITS and declared > _MAX_BODY_TEXT)
                or (idempotency_key is not None and len(idempotency_key) > IDEMPOTENCY_KEY_MAX)):
            await self._pass(scope, receive, send)
            return
        body, complete = await read_body(receive, MAX_BODY_BYTES)
        if not complete:
            await self._pass(scope, replay(body, receive, more_body=True), send)
            return
        # schemas._In refuses unstorable values field by field (~5 us an answer); a body with
        # no \u escape cannot hold a NUL or a lone surrogate (raw ones are not valid JSON), one
        # without 19 digits in a row no integer past 64 bits, one with few brackets nothing
        # deep: such a body, nearly every one, skips them.
        try:
            if action == "answers":
                plain = (b"\\u" not in body and _LONG_NUMBER not in body.translate(_DIGITS_AS_ZERO)
                         and body.count(b"{") + body.count(b"[") <= MAX_DEPTH)
                submitted: Any = (_PlainAnswer if plain else AnswerSubmit).model_validate_json(body)
            else:
                submitted = LeaseAction.model_validate_json(body)
        except ValidationError:
            await self._pass(scope, replay(body, receive, more_body=False), send)
            return
        try:
            if action == "answers":
                await self._answers(actor, project_id, submitted, idempotency_key, send, browser=not token)
            else:
                await self._give_back(action, actor, project_id, submitted.lease_token, send, browser=not token)
        except StaleCredentials:
            self.context.forget_user(actor.id)
            await self._pass(scope, replay(body, receive, more_body=False), send)

    async def _verify_token(self, token: str) -> Any:
        """The actor of a token that is not in the cache (a database read, which fills it), or
        None when the token is refused or the read fails: the app then answers."""
        try:
            actor = await self.context.backend.run(user_service.authenticate_token, self.context, token)
        except Exception:  # noqa: BLE001 - refused or failed: the app verifies again and answers
            return None
        self.counts["verified"] += 1
        return actor

    async def _session_actor(self, cookie: bytes, csrf: str | None) -> Any:
        """The actor of a session cookie sent with its CSRF token (web/security.py rules 2 and
        3), from the shared cache or one read; None for anything else (the app answers)."""
        if self.signer is None:  # built without the web UI: no browser sessions to verify
            return None
        session = self.signer.verify(cookie_parser(cookie.decode("latin-1")).get(SESSION_COOKIE))
        if session is None or not self.signer.check_csrf(session.nonce, csrf):
            return None
        actor = user_service.cached_session_actor(self.context, session.user_id, session.nonce)
        if actor is None:
            try:
                actor = await self.context.backend.run(user_service.session_actor, self.context, session.user_id,
                                                       session.nonce)
            except Exception:  # noqa: BLE001 - failed: the app reads it again and answers
                return None
            if actor is not None:
                self.counts["verified"] += 1
        if actor is not None and actor.must_enrol:
            return None  # must enrol in two-factor login first: the app answers the 403
        return actor

    async def _serve(self, send: Send, work: Awaitable[T], browser: bool) -> tuple[bool, T | None]:
        """(True, the use case's result), or (False, None) once its error has been answered:
        problem+json for a domain error; for anything else, logged and 500 as the app's handler
        for Exception does (the fast lane is in front of the framework's error middleware)."""
        self.counts["served"] += 1
        if browser:
            self.counts["browser"] += 1
        try:
            return True, await work
        except StaleCredentials:
            raise  # nothing was written or sent: the caller hands the request to the app
        except GoldlabelError as exc:
            await _send_problem(send, exc)
        except Exception as exc:  # noqa: BLE001 - as the app's handler for Exception does
            await _send_unexpected(send, exc)
        return False, None

    async def _next(self, actor: Any, project_id: int, send: Send, browser: bool) -> None:
        ok, lease = await self._serve(
            send, lease_service.lease_next_async(self.context, actor, project_id), browser)
        if not ok:
            return
        if lease is None:
            await _send(send, 204, b"", _EMPTY)
        else:
            await _send(send, 200, orjson.dumps(lease), _JSON)

    async def _answers(self, actor: Any, project_id: int, body: AnswerSubmit, idempotency_key: str | None,
                       send: Send, browser: bool) -> None:
        ok, result = await self._serve(send, submit_service.submit_answer_async(
            self.context, actor, project_id, body.lease_token, body.value, body.duration_ms, idempotency_key,
        ), browser)
        if ok:
            await _send(send, 201, orjson.dumps(result), _JSON)

    async def _give_back(self, action: str, actor: Any, project_id: int, lease_token: str, send: Send,
                         browser: bool) -> None:
        use_case = lease_service.skip_item_async if action == "skip" else lease_service.release_item_async
        ok, _ = await self._serve(send, use_case(self.context, actor, project_id, lease_token), browser)
        if ok:
            await _send(send, 204, b"", _EMPTY)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]],
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    all_headers = [*headers, (b"content-length", str(len(body)).encode())]
    if extra:
        all_headers += extra
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _send_unexpected(send: Send, exc: Exception) -> None:
    log.exception("unhandled error", exc_info=exc)
    body = problem_body(500, "internal_error", "an unexpected error occurred; it has been logged")
    await _send(send, 500, orjson.dumps(body), _PROBLEM)


async def _send_problem(send: Send, exc: GoldlabelError) -> None:
    extra = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else None
    await _send(send, exc.status, orjson.dumps(domain_problem_body(exc)), _PROBLEM, extra)
