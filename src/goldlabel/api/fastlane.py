"""The annotate loop's two hot requests, answered without the web framework.

``POST /api/v1/projects/{id}/next`` and ``POST /api/v1/projects/{id}/answers`` are most of
what a running project serves. Through FastAPI each paid for route matching over every route,
dependency solving, the web middleware and a response wrapper: more CPU than the queue's own
SQL (docs/benchmarks.md, "Annotate loop"). This ASGI middleware answers them directly, with the
same service calls, the same problem+json errors and the same security headers.

It takes only the plain case and hands everything else to the app unchanged, so the routes in
``api/routes/queue.py`` stay the one definition of the contract (OpenAPI, cookie sessions with
CSRF, validation errors):

- a Bearer token of a user the database knows: verified from this process's cache
  (``users.cached_token_actor``) or, when not cached (its first request, or every
  ``settings.token_cache_s`` when the entry expires), here by ``users.authenticate_token``, as the
  app's ``get_actor`` does. A token it refuses goes to the app, which answers the 401. (Handing
  every cache miss to the app cost a stall every 10 s: the tokens of all annotators, cached
  together, expired together, and each one's next request took the framework's path through
  the thread pool, which dipped the loop's throughput by a third for that second.)
- for ``answers``: a JSON body that ``AnswerSubmit`` accepts and a valid Idempotency-Key (the
  body is replayed to the app otherwise, which answers with its usual 422).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError, create_model
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from goldlabel.api.problems import MEDIA_TYPE, domain_problem_body, problem_body
from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.json_limits import MAX_DEPTH
from goldlabel.schemas import AnswerSubmit
from goldlabel.services import queue as queue_service
from goldlabel.services import users as user_service
from goldlabel.services.context import Context
from goldlabel.storage.engine import flush_after, flush_wal, uncontended
from goldlabel.web.security import SECURITY_HEADERS, read_body, replay

T = TypeVar("T")
log = logging.getLogger("goldlabel.api")

_PATH = re.compile(r"/api/v1/projects/([1-9][0-9]{0,17})/(next|answers)")
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
# Waits between tries to run a request on the event loop (50 ms in all), then the thread pool.
INLINE_RETRY_PAUSES_S = (0.0, 0.001, 0.002, 0.005, 0.01, 0.01, 0.01, 0.012)
# A request from another connection within this long makes the WAL flush leave the loop.
SHARED_WINDOW_S = 0.02

_JSON = [(b"content-type", b"application/json"), *SECURITY_HEADERS]
_PROBLEM = [(b"content-type", MEDIA_TYPE.encode()), *SECURITY_HEADERS]
_EMPTY = list(SECURITY_HEADERS)


class AnnotateFastLane:
    def __init__(self, app: ASGIApp, *, context: Context) -> None:
        self.app = app
        self.context = context
        # How requests were served: answered here ("served"), of which synchronous service calls
        # ran on the event loop ("inline") or in the thread pool ("thread") (PostgreSQL's common
        # case makes none: storage.aio), or handed to the app ("app"); how many waited for a
        # write-ahead-log flush ("flushed"), and the flushes that ran for them: on the loop, or
        # in a thread (one such flush serves every request waiting on it).
        self.counts = {"served": 0, "inline": 0, "thread": 0, "app": 0, "flushed": 0, "flushed_inline": 0,
                       "flushed_in_thread": 0, "verified": 0}
        self._active = 0  # fast-lane requests in _run now
        self._flushers: dict[Any, _GroupFlush] = {}
        # The connection of the latest fast-lane request, and when the connection last changed:
        # requests of other annotators within SHARED_WINDOW_S mean the loop is shared.
        self._last_client: Any = None
        self._switched_at = -SHARED_WINDOW_S

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.counts["app"] += 1
        await self.app(scope, receive, send)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        # On the event loop when nothing of this process can make the call wait: a thread hop
        # per request, and the GIL passed back and forth between the loop and the pool, cost a
        # third of the server's CPU at 8 annotators (docs/benchmarks.md). A short busy spell
        # (another thread's write) is waited out here without blocking the loop; a long one (an
        # import, a re-fit) sends the call to the thread pool, where it waits as any route does.
        # A submit's durable COMMIT on SQLite leaves its fsync to us (storage.engine.flush_after),
        # always before the response (Q4): right here when one annotator has the loop to
        # themselves (the thread hop cost a lone annotator 11% of the throughput), else in a
        # worker thread, one flush for every request waiting on it (_GroupFlush). Other
        # annotators' requests are mostly still in their sockets, not in _run, when a flush
        # starts: judged by requests in flight alone, 8 annotators flushed on the loop and
        # stalled it ~0.3 ms per answer (docs/benchmarks.md), hence the recent-connections test.
        self._active += 1
        try:
            with flush_after() as owed:
                result = await self._call(fn, *args)
            for engine in owed:
                flusher = self._flushers.get(engine)
                if flusher is None:
                    flusher = self._flushers[engine] = _GroupFlush(engine, self.counts)
                alone = self._active == 1 and time.monotonic() - self._switched_at > SHARED_WINDOW_S
                await flusher.flush(alone=alone)
                self.counts["flushed"] += 1
            return result
        finally:
            self._active -= 1

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        for pause in INLINE_RETRY_PAUSES_S:
            with uncontended(self.context.engine) as free:
                if free:
                    self.counts["inline"] += 1
                    return fn(*args)
            await asyncio.sleep(pause)
        self.counts["thread"] += 1
        return await run_in_threadpool(fn, *args)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        token = None
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
        actor = None
        if token:
            actor = user_service.cached_token_actor(self.context, token) or await self._verify(token)
        if actor is None:
            await self._pass(scope, receive, send)
            return
        client = scope.get("client")
        if client != self._last_client:
            if self._last_client is not None:
                self._switched_at = time.monotonic()
            self._last_client = client
        project_id = int(match.group(1))
        if match.group(2) == "next":
            await self._next(actor, project_id, send)
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
        plain = (b"\\u" not in body and _LONG_NUMBER not in body.translate(_DIGITS_AS_ZERO)
                 and body.count(b"{") + body.count(b"[") <= MAX_DEPTH)
        try:
            submitted = (_PlainAnswer if plain else AnswerSubmit).model_validate_json(body)
        except ValidationError:
            await self._pass(scope, replay(body, receive, more_body=False), send)
            return
        await self._answers(actor, project_id, submitted, idempotency_key, send)

    async def _verify(self, token: str) -> Any:
        """The actor of a token that is not in the cache (a database read, which fills it), or
        None when the token is refused or the read fails: the app then answers."""
        try:
            actor = await self._call(user_service.authenticate_token, self.context, token)
        except Exception:  # noqa: BLE001 - refused or failed: the app verifies again and answers
            return None
        self.counts["verified"] += 1
        return actor

    async def _serve(self, send: Send, work: Awaitable[T]) -> tuple[bool, T | None]:
        """(True, the service's result), or (False, None) once its error has been answered:
        problem+json for a domain error; for anything else, logged and 500 as the app's handler
        for Exception does (the fast lane is in front of the framework's error middleware)."""
        self.counts["served"] += 1
        try:
            return True, await work
        except GoldlabelError as exc:
            await _send_problem(send, exc)
        except Exception as exc:  # noqa: BLE001 - as the app's handler for Exception does
            await _send_unexpected(send, exc)
        return False, None

    # The services' *_async functions run PostgreSQL's common case on the event loop
    # (storage.aio) and hand everything else, and SQLite, to _run.
    async def _next(self, actor: Any, project_id: int, send: Send) -> None:
        ok, lease = await self._serve(
            send, queue_service.lease_next_async(self.context, actor, project_id, self._run)
        )
        if not ok:
            return
        if lease is None:
            await _send(send, 204, b"", _EMPTY)
        else:
            await _send(send, 200, orjson.dumps(lease), _JSON)

    async def _answers(self, actor: Any, project_id: int, body: AnswerSubmit, idempotency_key: str | None,
                       send: Send) -> None:
        ok, result = await self._serve(send, queue_service.submit_answer_async(
            self.context, actor, project_id, body.lease_token, body.value, body.duration_ms, idempotency_key,
            self._run,
        ))
        if ok:
            await _send(send, 201, orjson.dumps(result), _JSON)


class _GroupFlush:
    """Group commit: the requests of one event loop that wait for the same database's WAL flush
    share it. A flush covers every COMMIT made before it started, so a request whose COMMIT came
    after the running flush began waits for the next one, which starts when the running one
    ends and serves everyone queued meanwhile: at most two flushes are pending at any time,
    however many requests wait, instead of one thread hop and one fdatasync per request."""

    def __init__(self, engine: Any, counts: dict[str, int]) -> None:
        self.engine = engine
        self.counts = counts
        self._running: asyncio.Future | None = None
        self._next: asyncio.Future | None = None
        # One flush runs at a time, so it gets a thread of its own: it never queues behind the
        # shared pool's threads (40 of them, which exports and imports may all be holding).
        self._executor: ThreadPoolExecutor | None = None

    async def flush(self, *, alone: bool) -> None:
        if self._running is None:
            if alone:
                # Nothing else to serve: the loop may as well wait on the disk itself.
                flush_wal(self.engine)
                self.counts["flushed_inline"] += 1
                return
            waiter = self._start()
        elif self._next is not None:
            waiter = self._next
        else:
            waiter = self._next = asyncio.get_running_loop().create_future()
        # Shielded: a request cancelled while it waits (client gone) leaves the flush to the others.
        await asyncio.shield(waiter)

    def _start(self, into: asyncio.Future | None = None) -> asyncio.Future:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="goldlabel-wal-flush")
        running = asyncio.get_running_loop().run_in_executor(self._executor, flush_wal, self.engine)
        self.counts["flushed_in_thread"] += 1
        self._running = running
        running.add_done_callback(self._finished)  # first: the next flush starts before waiters wake
        if into is not None:
            running.add_done_callback(lambda done: _settle(into, done))
        return running

    def _finished(self, done: asyncio.Future) -> None:
        self._running = None
        queued, self._next = self._next, None
        if queued is not None:
            self._start(into=queued)


def _settle(target: asyncio.Future, done: asyncio.Future) -> None:
    if target.done():
        return
    if done.cancelled():
        target.cancel()
    elif done.exception() is not None:
        target.set_exception(done.exception())
    else:
        target.set_result(None)


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
