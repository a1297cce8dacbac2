"""Request bodies are authenticated before they are read and bounded by route (issue 17, item 1).

Each test drives the real ASGI app (fast lane, middleware, FastAPI) with a body that is produced
chunk by chunk and counts what the server pulled: an unauthenticated or oversized request must be
answered without the body being read, or after at most its route's limit.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest

from goldlabel.api.fastlane import MAX_BODY_BYTES
from goldlabel.app import create_app
from goldlabel.services.context import Context

CHUNK = 64 * 1024
HUGE = 300 * 1024 * 1024  # the 300 MB: never materialised, produced on demand


class Streamed:
    """A request body of ``size`` bytes of JSON-ish filler, handed out as the app asks."""

    def __init__(self, size: int, head: bytes = b'{"lease_token": "') -> None:
        self.size = size
        self.head = head
        self.consumed = 0

    def chunks(self) -> Iterator[bytes]:
        sent = 0
        while sent < self.size:
            chunk = self.head if sent == 0 else b"a" * min(CHUNK, self.size - sent)
            sent += len(chunk)
            yield chunk


def call(factory, method: str, path: str, body: Streamed | bytes, headers: dict[str, str],
         *, declare_length: bool = False) -> tuple[int, dict[str, Any], int]:
    """(status, JSON body, body bytes the app consumed) of one request through the real app,
    run on the factory's event loop (the one its other requests use)."""
    stream = body if isinstance(body, Streamed) else None
    raw = [body] if isinstance(body, bytes) else None
    pending: Iterator[bytes] = stream.chunks() if stream else iter(raw or [])
    consumed = 0
    total = stream.size if stream else len(body)  # type: ignore[arg-type]
    hdrs = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if declare_length:
        hdrs.append((b"content-length", str(total).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"goldlabel.test"), *hdrs],
             "client": ("127.0.0.1", 50001), "server": ("goldlabel.test", 80)}
    out: dict[str, Any] = {"status": None, "body": b""}
    finished = False

    async def receive():
        nonlocal consumed, finished
        if finished:
            await asyncio.sleep(3600)  # a client still connected, sending nothing
        chunk = next(pending, None)
        if chunk is None:
            finished = True
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    loop = factory._transport._loop
    asyncio.run_coroutine_threadsafe(factory.app(scope, receive, send), loop).result(timeout=60)
    payload = json.loads(out["body"]) if out["body"] else {}
    return out["status"], payload, consumed


@pytest.fixture
def project(factory):
    annotator = factory.make_user()
    project = factory.make_project(annotators=[annotator])
    factory.add_items(project, 2)
    project["annotator"] = annotator
    return project


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("route", ["skip", "answers", "next", "release"])
def test_unauthenticated_huge_body_is_refused_unread(factory, project, route):
    path = f"/api/v1/projects/{project['id']}/{route}"
    status, problem, consumed = call(factory, "POST", path, Streamed(HUGE), JSON)
    assert status == 401 and problem["code"] == "unauthorized"
    assert consumed == 0
    # A token the server does not know: refused before reading too (fast lane and routes).
    bad = {**JSON, "authorization": "Bearer gl_not-a-token"}
    status, problem, consumed = call(factory, "POST", path, Streamed(HUGE), bad)
    assert status == 401 and consumed == 0


def test_unauthenticated_write_elsewhere_is_refused_unread(factory, project):
    for method, path in (("POST", "/api/v1/projects"), ("PATCH", f"/api/v1/projects/{project['id']}"),
                         ("POST", f"/api/v1/projects/{project['id']}/items"),
                         ("POST", f"/api/v1/projects/{project['id']}/imports")):
        status, _, consumed = call(factory, method, path, Streamed(HUGE), JSON)
        assert (status, consumed) == (401, 0), path


@pytest.mark.parametrize("route", ["skip", "answers"])
def test_authenticated_body_over_the_route_limit_gets_413(factory, project, route):
    path = f"/api/v1/projects/{project['id']}/{route}"
    auth = {**JSON, "authorization": f"Bearer {factory.token_for(project['annotator'])}"}
    limit = factory.ctx.settings.max_request_bytes
    assert limit > MAX_BODY_BYTES  # the fast lane hands a long answer to the app, which bounds it
    # Chunked (no length declared): read up to the limit, then 413.
    status, problem, consumed = call(factory, "POST", path, Streamed(HUGE), auth)
    assert status == 413 and problem["code"] == "body_too_large"
    assert consumed <= limit + CHUNK
    # Declared: 413 before a byte is read.
    status, problem, consumed = call(factory, "POST", path, Streamed(limit + 1), auth, declare_length=True)
    assert (status, problem["code"], consumed) == (413, "body_too_large", 0)


def test_a_body_within_the_limit_still_works_chunked(factory, project):
    api = factory.api_as(project["annotator"])
    lease = api.post(f"/api/v1/projects/{project['id']}/next").json()
    body = json.dumps({"lease_token": lease["token"]}).encode()
    auth = {**JSON, "authorization": f"Bearer {factory.token_for(project['annotator'])}"}
    status, _, consumed = call(factory, "POST", f"/api/v1/projects/{project['id']}/skip", body, auth)
    assert status == 204 and consumed == len(body)


def _small_upload_app(factory, limit: int):
    settings = factory.ctx.settings.model_copy(update={"max_upload_bytes": limit})
    ctx = Context.from_settings(settings)
    return ctx, create_app(context=ctx, migrate=False)


def test_post_items_honours_max_upload_bytes(factory, project):
    from tests.conftest import Factory

    ctx, app = _small_upload_app(factory, 1024 * 1024)
    small = Factory(ctx, app)
    try:
        api = small.api_as(project["manager"])
        rows = [{"external_id": f"big{i}", "data": {"text": "x" * 1000}} for i in range(5200)]  # ~5.2 MB
        res = api.post(f"/api/v1/projects/{project['id']}/items", json=rows)
        assert res.status_code == 413, res.text
        assert res.json()["code"] == "upload_too_large"
        # Chunked, no length declared: stopped at the limit.
        auth = {**JSON, "authorization": f"Bearer {small.token_for(project['manager'])}"}
        status, _, consumed = call(small, "POST", f"/api/v1/projects/{project['id']}/items",
                                   Streamed(HUGE, head=b"["), auth)
        assert status == 413 and consumed <= 1024 * 1024 + CHUNK
        # Under the limit: imported.
        ok = api.post(f"/api/v1/projects/{project['id']}/items", json=rows[:500])
        assert ok.status_code == 201 and ok.json()["created"] == 500
        # A gzip body is not decompressed: it is counted (and refused) as sent.
        packed = gzip.compress(json.dumps(rows).encode())
        res = api.post(f"/api/v1/projects/{project['id']}/items", content=packed,
                       headers={"content-type": "application/json", "content-encoding": "gzip"})
        assert res.status_code in (400, 422) and len(packed) < 1024 * 1024
    finally:
        small.close()
        ctx.close()


def test_chunked_upload_past_max_upload_bytes_stops_there(factory, project):
    from tests.conftest import Factory

    ctx, app = _small_upload_app(factory, 1024 * 1024)
    small = Factory(ctx, app)
    try:
        head = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="items.jsonl"\r\n'
                b"Content-Type: application/octet-stream\r\n\r\n")
        headers = {"content-type": "multipart/form-data; boundary=xyz",
                   "authorization": f"Bearer {small.token_for(project['manager'])}"}
        status, problem, consumed = call(small, "POST", f"/api/v1/projects/{project['id']}/imports",
                                         Streamed(HUGE, head=head), headers)
        assert status == 413 and problem["code"] == "upload_too_large"
        assert consumed <= 1024 * 1024 + CHUNK
    finally:
        small.close()
        ctx.close()


def test_media_uploads_get_the_upload_limit_not_the_request_limit(factory, project):
    """POST .../media carries files: bounded by max_upload_bytes like .../imports, not by the
    1 MiB max_request_bytes of an answer or a form."""
    from tests.conftest import Factory

    ctx, app = _small_upload_app(factory, 3 * 1024 * 1024)
    small = Factory(ctx, app)
    try:
        api = small.api_as(project["manager"])
        png = b"\x89PNG\r\n\x1a\n" + bytes(2 * 1024 * 1024)  # 2 MiB: past max_request_bytes
        res = api.post(f"/api/v1/projects/{project['id']}/media", files={"file": ("big.png", png)})
        assert res.status_code == 201, res.text
        res = api.post(f"/api/v1/projects/{project['id']}/media",
                       files={"file": ("huge.png", png + bytes(2 * 1024 * 1024))})
        assert res.status_code == 413 and res.json()["code"] == "upload_too_large"
    finally:
        small.close()
        ctx.close()
