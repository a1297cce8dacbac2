"""The annotate loop's fast lane (``api/fastlane.py``) answers exactly as the routes do.

The tests check which path served each request with the middleware's own counters, and where
the work ran with the database backend's (``storage.backend``).
"""

from __future__ import annotations

import threading
import time

import pytest

from goldlabel.api.fastlane import MAX_BODY_BYTES, AnnotateFastLane
from goldlabel.asgi import SECURITY_HEADERS
from goldlabel.storage.engine import uncontended

PREFIX = "/api/v1"
POSITIVE = {"sentiment": "positive"}


def fast_lane(app) -> AnnotateFastLane:
    layer = app.fast_lane
    assert isinstance(layer, AnnotateFastLane), "the fast lane is not installed"
    return layer


@pytest.fixture
def setup(factory):
    annotators = [factory.make_user() for _ in range(2)]
    project = factory.make_project(annotators=annotators, overlap_min=1)
    factory.add_items(project, 6)
    return project, [factory.api_as(a) for a in annotators]


def lane_counts(factory) -> dict[str, int]:
    return {**fast_lane(factory.app).counts, **factory.ctx.backend.counts}


def assert_security_headers(res) -> None:
    for key, value in SECURITY_HEADERS:
        assert res.headers[key.decode()] == value.decode()


def test_cycle_served_by_the_fast_lane_matches_the_routes(factory, setup):
    project, (api, _) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    # First request of the token: the fast lane verifies it (and fills the cache).
    start = lane_counts(factory)
    first = api.post(f"{base}/next")
    before = lane_counts(factory)
    assert before["app"] == start["app"] and before["verified"] == start["verified"] + 1
    answered = api.post(f"{base}/answers", json={"lease_token": first.json()["token"], "value": POSITIVE})
    lease = api.post(f"{base}/next")
    submitted = api.post(f"{base}/answers", json={"lease_token": lease.json()["token"], "value": POSITIVE,
                                                  "duration_ms": 1200})
    after = lane_counts(factory)
    assert after["served"] - before["served"] == 3 and after["app"] == before["app"]
    # SQLite runs the service calls on the loop or in the thread pool; PostgreSQL's common case
    # runs its statements on the loop (storage.aio) and makes none.
    sqlite = factory.ctx.engine.dialect.name == "sqlite"
    assert after["inline"] + after["thread"] - before["inline"] - before["thread"] == (3 if sqlite else 0)
    # Q4: each of the two submits waited for its write-ahead-log flush (SQLite; PostgreSQL
    # flushes inside COMMIT), the leases for none.
    assert after["flushed"] - before["flushed"] == (2 if sqlite else 0)
    assert after["flushed_in_thread"] == before["flushed_in_thread"]  # alone on the loop: flushed there

    for res, status in ((first, 200), (lease, 200), (answered, 201), (submitted, 201)):
        assert res.status_code == status, res.text
        assert res.headers["content-type"] == "application/json"
        assert_security_headers(res)
    assert set(first.json()) == set(lease.json()) == {"token", "expires_at", "item"}
    assert set(lease.json()["item"]) == {"id", "data", "predictions"}
    body = submitted.json()
    assert body["item_status"] == answered.json()["item_status"] == "needs_review"  # 1 answer at skill 0.7
    assert body["answer"]["value"] == POSITIVE and body["answer"]["duration_ms"] == 1200
    assert set(body["answer"]) == set(answered.json()["answer"])
    mine = api.get(f"{base}/my-answers").json()["items"]
    assert {a["id"] for a in mine} == {answered.json()["answer"]["id"], body["answer"]["id"]}


def test_tokens_out_of_the_cache_are_verified_by_the_fast_lane(factory, setup, ctx):
    # Every cached token expires after TOKEN_CACHE_TTL_S; its next request is verified again
    # on the fast lane (a database read), not handed to the framework.
    project, (api, _) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    assert api.post(f"{base}/next").status_code == 200
    before = lane_counts(factory)
    ctx.forget_actors()  # as when the entry expires
    lease = api.post(f"{base}/next")
    assert lease.status_code == 200
    ctx.forget_actors()
    assert api.post(f"{base}/answers",
                    json={"lease_token": lease.json()["token"], "value": POSITIVE}).status_code == 201
    after = lane_counts(factory)
    assert after["verified"] - before["verified"] == 2 and after["app"] == before["app"]


def test_a_refused_token_is_answered_by_the_framework(factory, setup):
    project, _ = setup
    base = f"{PREFIX}/projects/{project['id']}"
    before = lane_counts(factory)
    anonymous = factory.api_as(None)
    for token in ("gl_not-a-real-token", "not even the prefix"):
        res = anonymous.post(f"{base}/next", headers={"Authorization": f"Bearer {token}"})
        assert res.status_code == 401 and res.json()["code"] == "unauthorized"
        assert res.headers["www-authenticate"] == "Bearer"
    after = lane_counts(factory)
    assert after["app"] == before["app"] + 2 and after["verified"] == before["verified"]


def test_domain_errors_are_the_same_problems(factory, setup):
    project, (api, other) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    lease = api.post(f"{base}/next").json()
    outsider = factory.api_as(factory.make_user())
    outsider.get(f"{PREFIX}/users/me")  # verifies (and caches) the outsider's token
    before = lane_counts(factory)

    unknown = api.post(f"{base}/answers", json={"lease_token": "lt_nope", "value": POSITIVE})
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert unknown.headers["content-type"] == "application/problem+json"
    assert_security_headers(unknown)
    not_member = outsider.post(f"{base}/next")
    assert not_member.status_code == 404 and not_member.json()["code"] == "not_found"
    theirs = other.post(f"{base}/answers", json={"lease_token": lease["token"], "value": POSITIVE})
    assert theirs.status_code == 404
    bad_label = api.post(f"{base}/answers", json={"lease_token": lease["token"], "value": {"sentiment": "meh"}})
    assert bad_label.status_code == 422
    assert bad_label.json()["errors"][0]["code"] == "unknown_label"
    assert lane_counts(factory)["served"] == before["served"] + 4 and lane_counts(factory)["app"] == before["app"]

    ok = api.post(f"{base}/answers", json={"lease_token": lease["token"], "value": POSITIVE})
    again = api.post(f"{base}/answers", json={"lease_token": lease["token"], "value": POSITIVE})
    assert ok.status_code == again.status_code == 201
    assert again.json()["answer"]["id"] == ok.json()["answer"]["id"]  # Q5: a retry is the same answer


def test_what_the_fast_lane_does_not_take_reaches_the_routes(factory, setup):
    project, (api, _) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    api.get(f"{PREFIX}/users/me")
    lease = api.post(f"{base}/next").json()
    before = lane_counts(factory)

    # Body the submit model refuses: replayed to the framework, which reports each field.
    missing = api.post(f"{base}/answers", json={"value": POSITIVE})
    assert missing.status_code == 422 and missing.json()["code"] == "validation_failed"
    assert any(e["loc"][-1] == "lease_token" for e in missing.json()["errors"])
    not_json = api.post(f"{base}/answers", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 422
    long_key = api.post(f"{base}/answers", json={"lease_token": lease["token"], "value": POSITIVE},
                        headers={"Idempotency-Key": "k" * 201})
    assert long_key.status_code == 422
    # A body over the fast lane's limit is replayed whole to the framework.
    huge = api.post(f"{base}/answers", json={"lease_token": lease["token"],
                                             "value": {"sentiment": "positive", "note": "x" * (MAX_BODY_BYTES + 10)}})
    assert huge.status_code == 422 and huge.json()["code"] == "validation_failed"
    assert "note" in huge.text
    assert lane_counts(factory)["app"] == before["app"] + 4
    # The lease is untouched by all of that.
    ok = api.post(f"{base}/answers", json={"lease_token": lease["token"], "value": POSITIVE},
                  headers={"Idempotency-Key": "k" * 200})
    assert ok.status_code == 201, ok.text


def test_waits_for_a_busy_process_without_losing_the_request(factory, setup, ctx):
    """SQLite: a write held elsewhere in the process (an import, a re-fit) sends the request to
    the thread pool after a short wait instead of blocking the event loop; it completes once
    the database is free. PostgreSQL: a full blocking pool does not delay the common lease."""
    project, (api, _) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    api.post(f"{base}/next")  # token verified
    before = lane_counts(factory)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        if ctx.engine.dialect.name == "sqlite":
            with uncontended(ctx.engine) as free:
                assert free
                held.set()
                release.wait(5)
        else:
            conns = [ctx.engine.connect() for _ in range(2 * ctx.settings.pg_pool_size)]
            held.set()
            release.wait(5)
            for c in conns:
                c.close()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    res = api.post(f"{base}/next")
    elapsed = time.monotonic() - started
    holder.join()
    assert res.status_code == 200, res.text
    if ctx.engine.dialect.name == "sqlite":
        assert elapsed >= 0.25  # it waited for the database
        assert lane_counts(factory)["thread"] == before["thread"] + 1
    else:
        # The common lease runs on the event loop's own connections (storage.aio): a full
        # blocking pool does not hold it up.
        assert elapsed < 0.25
        assert lane_counts(factory)["thread"] == before["thread"]


def test_uncontended_reports_an_exhausted_pool(ctx):
    if ctx.engine.dialect.name != "postgresql":
        with uncontended(ctx.engine) as free:
            assert free
            seen: list[bool] = []
            t = threading.Thread(target=lambda: seen.append(_probe(ctx.engine)))
            t.start()
            t.join()
            assert seen == [False]  # held by this thread: another thread must not go inline
        return
    engine = ctx.engine
    conns = [engine.connect() for _ in range(2 * ctx.settings.pg_pool_size)]
    try:
        with uncontended(engine) as free:
            assert not free
    finally:
        for c in conns:
            c.close()
    with uncontended(engine) as free:
        assert free


def _probe(engine) -> bool:
    with uncontended(engine) as free:
        return free


def test_a_busy_loop_flushes_in_a_thread(factory, setup):
    """With other fast-lane requests in flight the WAL flush runs in the thread pool (the loop
    serves them meanwhile); alone it runs on the loop. Either way it precedes the response."""
    project, (api, _) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    backend = factory.ctx.backend
    api.post(f"{base}/next")  # token verified
    lease = api.post(f"{base}/next").json()
    before = lane_counts(factory)
    backend._active = 1  # as if another request were in the middle of its call
    try:
        res = api.post(f"{base}/answers", json={"lease_token": lease["token"], "value": POSITIVE})
    finally:
        backend._active = 0
    assert res.status_code == 201, res.text
    sqlite = factory.ctx.engine.dialect.name == "sqlite"
    after = lane_counts(factory)
    assert after["flushed"] - before["flushed"] == (1 if sqlite else 0)
    assert after["flushed_in_thread"] - before["flushed_in_thread"] == (1 if sqlite else 0)
    mine = api.get(f"{base}/my-answers").json()["items"]
    assert res.json()["answer"]["id"] in {a["id"] for a in mine}



def test_other_annotators_just_now_send_the_flush_to_a_thread(factory, setup, monkeypatch):
    """Another connection's request within SHARED_WINDOW_S means other annotators share the
    loop: the submit's WAL flush then leaves it (even though only one request is in flight),
    so the loop serves them while the disk works."""
    import httpx

    from goldlabel.client.transport import ASGIAppTransport
    from goldlabel.storage import backend as backend_module

    # "Just now" on a loaded test machine: a request here can take longer than the server's 20 ms.
    monkeypatch.setattr(backend_module, "SHARED_WINDOW_S", 5.0)
    project, (api, other) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    other_conn = httpx.Client(transport=ASGIAppTransport(factory.app, client=("127.0.0.1", 50001)),
                              base_url="http://goldlabel.test", headers=dict(other.headers))
    api.post(f"{base}/next")
    other_conn.post(f"{base}/next")  # both tokens verified (by the framework)
    other_conn.post(f"{base}/next")  # the fast lane's latest connection: the other annotator's
    lease = api.post(f"{base}/next").json()  # back to the first connection: a switch, just now
    before = lane_counts(factory)
    res = api.post(f"{base}/answers", json={"lease_token": lease["token"], "value": POSITIVE})
    assert res.status_code == 201, res.text
    after = lane_counts(factory)
    sqlite = factory.ctx.engine.dialect.name == "sqlite"
    assert after["flushed_in_thread"] - before["flushed_in_thread"] == (1 if sqlite else 0)
    assert after["flushed_inline"] == before["flushed_inline"]
    other_conn.close()


def test_unexpected_error_in_the_fast_lane_is_a_logged_problem_500(factory, setup, monkeypatch, caplog):
    """The fast lane sits in front of the framework's error middleware: it answers an
    unexpected error itself, as the app's handler for Exception does."""
    from goldlabel.services.queue import lease as lease_service

    project, (api, _) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    api.post(f"{base}/next")  # token verified: the next request takes the fast lane

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    # Broken where each database's path goes: the blocking call (SQLite) or the outcome of
    # the statement run on the event loop (PostgreSQL).
    monkeypatch.setattr(lease_service, "_lease_general", broken)
    monkeypatch.setattr(lease_service, "_lease_outcome", broken)
    before = lane_counts(factory)
    with caplog.at_level("ERROR", logger="goldlabel.api"):
        res = api.post(f"{base}/next")
    assert lane_counts(factory)["served"] == before["served"] + 1 and lane_counts(factory)["app"] == before["app"]
    assert res.status_code == 500
    assert res.headers["content-type"] == "application/problem+json"
    assert res.json()["code"] == "internal_error" and "disk on fire" not in res.text
    assert_security_headers(res)
    assert any("unhandled error" in r.getMessage() and r.exc_info for r in caplog.records)


def test_with_opentelemetry_configured_every_request_takes_the_framework(factory, setup, monkeypatch):
    """FastAPI's native telemetry traces what goes through the framework: when it is on, the
    annotate loop's requests go there too (served by the routes, same answers)."""
    project, (api, _) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    api.post(f"{base}/next")
    app = factory.app
    monkeypatch.setattr(app._native_telemetry, "enabled", lambda: True)
    monkeypatch.setattr(app, "_telemetry_checked_until", 0.0)
    before = lane_counts(factory)
    lease = api.post(f"{base}/next")
    answered = api.post(f"{base}/answers", json={"lease_token": lease.json()["token"], "value": POSITIVE})
    assert lease.status_code == 200 and answered.status_code == 201, answered.text
    after = lane_counts(factory)
    assert {k: after[k] for k in fast_lane(app).counts} == {k: before[k] for k in fast_lane(app).counts}, \
        "the fast lane saw a request"
    # The routes ran the same use cases on the same backend.
    if factory.ctx.engine.dialect.name == "sqlite":
        assert after["inline"] + after["thread"] - before["inline"] - before["thread"] == 2
    monkeypatch.setattr(app._native_telemetry, "enabled", lambda: False)
    monkeypatch.setattr(app, "_telemetry_checked_until", 0.0)
    api.post(f"{base}/next")
    after = lane_counts(factory)
    assert after["served"] == before["served"] + 1 and after["app"] == before["app"]


BROWSER_PASSWORD = "amber lantern quietly 41"


def browser_for(factory, user) -> tuple:
    """A browser logged in as ``user`` through the login form, and the CSRF token the annotator
    page carries (what web/static/js/api.js sends as X-CSRF-Token)."""
    import re

    import httpx

    from goldlabel.client.transport import ASGIAppTransport

    transport = ASGIAppTransport(factory.app)
    client = httpx.Client(transport=transport, base_url="http://goldlabel.test")
    token = re.search(r'name="csrf-token" content="([^"]*)"', client.get("/login").text).group(1)
    res = client.post("/login", data={"username": user.username, "password": BROWSER_PASSWORD, "csrf_token": token})
    assert res.status_code == 303, res.text
    csrf = re.search(r'name="csrf-token" content="([^"]*)"', client.get("/").text).group(1)
    return client, csrf


def test_browser_clients_take_the_same_path_as_tokens(factory):
    """The annotator page's requests (session cookie + X-CSRF-Token, as api.js sends them) are
    served by the fast lane's use cases, as Bearer requests are: next, answers, skip, release."""
    user = factory.make_user(password=BROWSER_PASSWORD)
    project = factory.make_project(annotators=[user], overlap_min=1)
    factory.add_items(project, 6)
    browser, csrf = browser_for(factory, user)
    base = f"{PREFIX}/projects/{project['id']}"
    js = {"X-CSRF-Token": csrf}
    before = lane_counts(factory)
    lease = browser.post(f"{base}/next", headers=js)  # no body, no content type: as api.js sends it
    assert lease.status_code == 200, lease.text
    assert_security_headers(lease)
    answered = browser.post(f"{base}/answers", headers=js,
                            json={"lease_token": lease.json()["token"], "value": POSITIVE, "duration_ms": 900})
    assert answered.status_code == 201, answered.text
    assert answered.json()["answer"]["annotator_id"] == user.id
    skipped = browser.post(f"{base}/skip", headers=js, json={"lease_token": browser.post(
        f"{base}/next", headers=js).json()["token"]})
    assert skipped.status_code == 204, skipped.text
    released = browser.post(f"{base}/release", headers=js, json={"lease_token": browser.post(
        f"{base}/next", headers=js).json()["token"]})
    assert released.status_code == 204, released.text
    after = lane_counts(factory)
    assert after["app"] == before["app"]  # none went through the framework
    assert after["browser"] - before["browser"] == after["served"] - before["served"] == 6
    # The page load (GET /) verified the session into the cache API tokens use: the loop's
    # requests read no session at all.
    assert after["verified"] == before["verified"]
    browser.close()


def test_browser_requests_without_csrf_or_session_are_refused_as_before(factory):
    user = factory.make_user(password=BROWSER_PASSWORD)
    project = factory.make_project(annotators=[user], overlap_min=1)
    factory.add_items(project, 3)
    browser, csrf = browser_for(factory, user)
    base = f"{PREFIX}/projects/{project['id']}"
    before = lane_counts(factory)
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        res = browser.post(f"{base}/next", headers=headers)
        assert res.status_code == 403 and res.json()["code"] == "csrf_failed"
    assert lane_counts(factory)["app"] == before["app"] + 2  # the web middleware answered
    assert browser.post(f"{base}/next", headers={"X-CSRF-Token": csrf}).status_code == 200
    # Logged out: the cached session goes with it, at once; its cookie is anonymous again.
    cookie = browser.cookies.get("gl_session")
    assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
    browser.cookies.set("gl_session", cookie)
    res = browser.post(f"{base}/next", headers={"X-CSRF-Token": csrf})
    assert res.status_code == 401 and res.json()["code"] == "unauthorized"
    browser.close()


def test_bearer_skip_and_release_take_the_fast_lane(factory, setup):
    project, (api, _) = setup
    base = f"{PREFIX}/projects/{project['id']}"
    api.post(f"{base}/next")  # token verified
    before = lane_counts(factory)
    for action in ("skip", "release"):
        lease = api.post(f"{base}/next").json()
        res = api.post(f"{base}/{action}", json={"lease_token": lease["token"]})
        assert res.status_code == 204 and res.content == b""
        assert_security_headers(res)
        again = api.post(f"{base}/{action}", json={"lease_token": "lt_unknown"})
        assert again.status_code == 404 and again.json()["code"] == "not_found"
    missing = api.post(f"{base}/skip", json={})
    assert missing.status_code == 422 and missing.json()["code"] == "validation_failed"
    after = lane_counts(factory)
    assert after["served"] - before["served"] == 6 and after["app"] - before["app"] == 1


@pytest.mark.parametrize("entry", ["fast_lane", "routes"])
def test_an_item_deleted_after_the_lease_retry_is_acknowledged_new_answer_is_410(factory, entry, monkeypatch):
    """A manager deletes items while annotators hold them. A retry of an answer that was
    acknowledged (same Idempotency-Key, or the same lease token after a lost response) gets the
    acknowledgement it got; a new answer on a lease of a deleted item is 410 item_deleted. The
    fast lane and the routes answer alike."""
    annotator = factory.make_user()
    project = factory.make_project(annotators=[annotator], overlap_min=1)
    factory.add_items(project, 4)
    api, mgr = factory.api_as(annotator), factory.api_as(project["manager"])
    base = f"{PREFIX}/projects/{project['id']}"
    app = factory.app
    if entry == "routes":
        monkeypatch.setattr(app._native_telemetry, "enabled", lambda: True)
        monkeypatch.setattr(app, "_telemetry_checked_until", 0.0)
    before = lane_counts(factory)
    first, second = (api.post(f"{base}/next").json() for _ in range(2))
    acked = api.post(f"{base}/answers", json={"lease_token": first["token"], "value": POSITIVE},
                     headers={"Idempotency-Key": "answer-1"})
    assert acked.status_code == 201, acked.text
    for lease in (first, second):
        item_id = factory.item_id(annotator, project["id"], lease["item"]["id"])
        assert mgr.delete(f"{base}/items/{item_id}").status_code == 204

    by_key = api.post(f"{base}/answers", json={"lease_token": first["token"], "value": POSITIVE},
                      headers={"Idempotency-Key": "answer-1"})
    by_token = api.post(f"{base}/answers", json={"lease_token": first["token"], "value": POSITIVE})
    for retry in (by_key, by_token):
        assert retry.status_code == 201, retry.text
        assert retry.json() == acked.json()  # the same answer and the item status it was told

    new = api.post(f"{base}/answers", json={"lease_token": second["token"], "value": POSITIVE},
                   headers={"Idempotency-Key": "answer-2"})
    assert new.status_code == 410, new.text
    assert new.headers["content-type"] == "application/problem+json"
    assert new.json()["code"] == "item_deleted"
    after = lane_counts(factory)
    if entry == "routes":
        assert {k: after[k] for k in fast_lane(app).counts} == {k: before[k] for k in fast_lane(app).counts}
    else:
        assert after["app"] == before["app"] and after["served"] - before["served"] == 6
    # Restored, the item takes the answer again (a late answer on the cancelled lease, Q7).
    second_id = factory.item_id(annotator, project["id"], second["item"]["id"])
    assert mgr.post(f"{base}/items/restore", json={"item_ids": [second_id]}).status_code == 200
    late = api.post(f"{base}/answers", json={"lease_token": second["token"], "value": POSITIVE})
    assert late.status_code == 201, late.text
