"""Sessions, CSRF and security headers of the web layer, in process (no browser), on both
database backends."""

from __future__ import annotations

import hashlib
import re
import time

import httpx
import pytest
import sqlalchemy as sa

from goldlabel.client import Client, Forbidden, NotFound
from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services import users as user_service
from goldlabel.services.sessions import SESSION_COOKIE, SessionSigner, start_session
from goldlabel.storage.tables import sessions
from goldlabel.web.security import MAX_FORM_BYTES

PASSWORD = "plum-otter-canvas-42"


@pytest.fixture
def browser_client(app):
    transport = ASGIAppTransport(app)
    client = httpx.Client(transport=transport, base_url="http://goldlabel.test")
    yield client
    client.close()
    transport.close()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]*)"', html).group(1)


def log_in(client: httpx.Client, username: str, password: str = PASSWORD, next_path: str = "/") -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": next_path})


def test_login_sets_a_hardened_session_cookie(factory, browser_client):
    user = factory.make_user(password=PASSWORD)
    res = log_in(browser_client, user.username)
    assert res.status_code == 303 and res.headers["location"] == "/", res.text
    cookie = next(c for c in res.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert browser_client.get("/api/v1/users/me").json()["username"] == user.username


def test_cookie_is_secure_over_https(factory, app):
    user = factory.make_user(password=PASSWORD)
    transport = ASGIAppTransport(app)
    with httpx.Client(transport=transport, base_url="https://goldlabel.test") as client:
        res = log_in(client, user.username)
    transport.close()
    cookie = next(c for c in res.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "Secure" in cookie


def test_wrong_password_and_login_without_csrf(factory, browser_client):
    user = factory.make_user(password=PASSWORD)
    assert log_in(browser_client, user.username, "wrong-password").status_code == 401
    res = browser_client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert res.status_code == 403
    assert SESSION_COOKIE not in browser_client.cookies


def test_pages_redirect_to_login_and_refuse_open_redirects(factory, browser_client):
    user = factory.make_user(password=PASSWORD)
    res = browser_client.get("/projects/1/annotate")
    assert res.status_code == 303 and res.headers["location"] == "/login?next=/projects/1/annotate"
    res = log_in(browser_client, user.username, next_path="//evil.example/")
    assert res.headers["location"] == "/"


def test_cookie_api_writes_need_the_csrf_header_bearer_ones_do_not(factory, browser_client):
    user = factory.make_user(password=PASSWORD)
    project = factory.make_project(annotators=[user])
    factory.add_items(project, 2)
    log_in(browser_client, user.username)
    url = f"/api/v1/projects/{project['id']}/next"
    res = browser_client.post(url)
    assert res.status_code == 403 and res.json()["code"] == "csrf_failed"
    token = csrf_of(browser_client.get("/").text)
    assert browser_client.post(url, headers={"X-CSRF-Token": token}).status_code == 200
    assert factory.api_as(user).post(url).status_code == 200  # bearer: no cookie, no CSRF


def test_tampered_or_foreign_cookies_are_ignored(factory, browser_client, settings, ctx):
    user = factory.make_user(password=PASSWORD)
    other = SessionSigner("another key").issue(user.id)[0]
    browser_client.cookies.set(SESSION_COOKIE, other)
    assert browser_client.get("/api/v1/users/me").status_code == 401
    good, session = SessionSigner(settings.secret_key).issue(user.id)
    payload, sig = good.split(".")
    browser_client.cookies.set(SESSION_COOKIE, f"{payload}x.{sig}")
    assert browser_client.get("/api/v1/users/me").status_code == 401
    browser_client.cookies.set(SESSION_COOKIE, good)
    # Well signed, but no session was ever recorded for it: refused.
    assert browser_client.get("/api/v1/users/me").status_code == 401
    start_session(ctx, session)
    assert browser_client.get("/api/v1/users/me").status_code == 200


def test_suspended_user_loses_the_session_at_once(factory, browser_client, ctx):
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    assert browser_client.get("/").status_code == 200
    admin = factory.make_user("admin")
    user_service.update_user(ctx, admin, user.id, {"is_active": False})
    assert browser_client.get("/").status_code == 303
    assert browser_client.get("/api/v1/users/me").status_code == 401
    # Deactivation ended the session itself: reactivating the account does not revive it.
    assert session_count(ctx, user.id) == 0
    user_service.update_user(ctx, admin, user.id, {"is_active": True})
    assert browser_client.get("/api/v1/users/me").status_code == 401
    assert log_in(browser_client, user.username).status_code == 303
    assert browser_client.get("/api/v1/users/me").status_code == 200


def test_logout_needs_the_token_and_clears_the_cookie(factory, browser_client):
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    assert browser_client.post("/logout", data={}).status_code == 403
    token = csrf_of(browser_client.get("/").text)
    res = browser_client.post("/logout", data={"csrf_token": token})
    assert res.status_code == 303 and res.headers["location"] == "/login"
    assert SESSION_COOKIE not in browser_client.cookies



def test_form_posts_read_the_csrf_field_within_a_size_limit(factory, browser_client):
    """A form's CSRF field is read from its body, which is then handed on whole; a body over
    the limit is refused with 413 before anything reads it."""
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    token = csrf_of(browser_client.get("/").text)
    padding = "x" * (MAX_FORM_BYTES + 1)
    too_big = browser_client.post("/logout", data={"csrf_token": token, "pad": padding})
    assert too_big.status_code == 413
    assert SESSION_COOKIE in browser_client.cookies  # nothing happened
    near = "x" * (MAX_FORM_BYTES - 1000)
    res = browser_client.post("/logout", data={"pad": near, "csrf_token": token})  # the field after the padding
    assert res.status_code == 303 and res.headers["location"] == "/login"

# -- server-side session records ----------------------------------------------------------


@pytest.fixture
def browsers(app):
    """Makes extra in-process browsers (cookie jars) on the same app, closed at the end."""
    made: list[tuple[httpx.Client, ASGIAppTransport]] = []

    def make(cookie: str | None = None) -> httpx.Client:
        transport = ASGIAppTransport(app)
        client = httpx.Client(transport=transport, base_url="http://goldlabel.test")
        if cookie is not None:
            client.cookies.set(SESSION_COOKIE, cookie)
        made.append((client, transport))
        return client

    yield make
    for client, transport in made:
        client.close()
        transport.close()


def session_count(ctx, user_id: int) -> int:
    with ctx.engine.connect() as conn:
        q = sa.select(sa.func.count()).select_from(sessions).where(sessions.c.user_id == user_id)
        return conn.execute(q).scalar_one()


def logged_in(client: httpx.Client) -> bool:
    status = client.get("/api/v1/users/me").status_code
    assert status in (200, 401), status
    return status == 200


def test_a_copied_cookie_stops_working_after_logout(factory, browser_client, browsers):
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    thief = browsers(browser_client.cookies[SESSION_COOKIE])
    assert logged_in(thief) and thief.get("/").status_code == 200
    token = csrf_of(browser_client.get("/").text)
    assert browser_client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert not logged_in(thief)
    res = thief.get("/")
    assert res.status_code == 303 and res.headers["location"].startswith("/login")


def test_password_change_ends_the_other_sessions(factory, browser_client, browsers, ctx):
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    other = browsers()
    log_in(other, user.username)
    assert logged_in(browser_client) and logged_in(other) and session_count(ctx, user.id) == 2
    # Changed from a browser session of the user's own: that one stays, the others end.
    token = csrf_of(browser_client.get("/").text)
    res = browser_client.patch(f"/api/v1/users/{user.id}", json={"password": "a new passphrase"},
                               headers={"X-CSRF-Token": token})
    assert res.status_code == 200, res.text
    assert logged_in(browser_client) and not logged_in(other)
    assert log_in(other, user.username, "a new passphrase").status_code == 303 and logged_in(other)
    # Changed with an API token (here an admin's): every browser session of the user ends; API
    # tokens are not sessions and keep working.
    admin = factory.make_user("admin")
    res = factory.api_as(admin).patch(f"/api/v1/users/{user.id}", json={"password": "third passphrase"})
    assert res.status_code == 200, res.text
    assert not logged_in(browser_client) and not logged_in(other)
    assert session_count(ctx, user.id) == 0
    assert factory.api_as(user).get("/api/v1/users/me").status_code == 200
    # A display-name change ends nothing.
    log_in(other, user.username, "third passphrase")
    factory.api_as(admin).patch(f"/api/v1/users/{user.id}", json={"display_name": "Renamed"})
    assert logged_in(other)


def test_end_sessions_route_admin_self_and_scoping(factory, browser_client, browsers, app):
    user = factory.make_user(password=PASSWORD)
    admin, manager, stranger = factory.make_user("admin"), factory.make_user("manager"), factory.make_user()
    log_in(browser_client, user.username)
    laptop = browsers()
    log_in(laptop, user.username)
    url = f"/api/v1/users/{user.id}/sessions"
    # Another annotator does not learn the account exists; a manager may not end an admin's.
    res = factory.api_as(stranger).delete(url)
    assert res.status_code == 404 and res.json()["code"] == "not_found"
    assert factory.api_as(manager).delete(f"/api/v1/users/{admin.id}/sessions").status_code == 403
    assert factory.api_as(admin).delete("/api/v1/users/999999/sessions").status_code == 404
    assert logged_in(browser_client) and logged_in(laptop)
    # An admin ends them all.
    assert factory.api_as(admin).delete(url).status_code == 204
    assert not logged_in(browser_client) and not logged_in(laptop)
    # The user themself, from a browser (CSRF header needed as for any cookie write): all end,
    # the one asking too.
    log_in(browser_client, user.username)
    log_in(laptop, user.username)
    assert browser_client.delete(url).status_code == 403  # no CSRF token
    token = csrf_of(browser_client.get("/").text)
    assert browser_client.delete(url, headers={"X-CSRF-Token": token}).status_code == 204
    assert not logged_in(browser_client) and not logged_in(laptop)
    # Managers may end the sessions of an annotator of their projects (they may suspend them
    # too), through the SDK.
    factory.make_project(manager, annotators=[user])
    log_in(laptop, user.username)
    with Client("http://goldlabel.test", factory.token_for(manager), transport=ASGIAppTransport(app)) as gl:
        gl.end_sessions(user.id)
        assert not logged_in(laptop)
        with pytest.raises(Forbidden):
            gl.end_sessions(admin.id)
    stranger_sdk = Client("http://goldlabel.test", factory.token_for(stranger), transport=ASGIAppTransport(app))
    with stranger_sdk as gl, pytest.raises(NotFound):
        gl.end_sessions(user.id)


def test_forged_cookies_never_reach_the_database(factory, browser_client, settings, ctx):
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    good = browser_client.cookies[SESSION_COOKIE]
    payload, sig = good.split(".")
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    forged = [SessionSigner("another key").issue(user.id)[0], f"{payload}x.{sig}", f"{payload}.{sig[:-2]}",
              "not a cookie"]
    sa.event.listen(ctx.engine, "before_cursor_execute", note)
    try:
        for cookie in forged:
            browser_client.cookies.set(SESSION_COOKIE, cookie)
            assert browser_client.get("/api/v1/users/me").status_code == 401
        assert seen == []
        # The control: a genuine cookie costs exactly one statement, sessions and users together.
        browser_client.cookies.set(SESSION_COOKIE, good)
        assert browser_client.get("/api/v1/users/me").status_code == 200
    finally:
        sa.event.remove(ctx.engine, "before_cursor_execute", note)
    checks = [q for q in seen if "sessions" in q]
    assert len(checks) == 1 and "users" in checks[0], seen


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's planner says plainly what it does
def test_session_statements_use_an_index(ctx):
    from goldlabel.storage import users as user_store

    captured: list[tuple[str, dict]] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    sa.event.listen(ctx.engine, "before_cursor_execute", note)
    try:
        with ctx.engine.begin() as conn:
            user_store.fetch_user_by_session(conn, "0" * 64, 1, 0)
            user_store.delete_expired_sessions(conn, 0)
            user_store.delete_user_sessions(conn, 1)
    finally:
        sa.event.remove(ctx.engine, "before_cursor_execute", note)
    captured = [(q, p) for q, p in captured if "sessions" in q]
    # The per-request check by the primary key (and the user by theirs); the sweeps by their indexes.
    expected = ["(nonce_hash=?)", "ix_sessions_expires_at (expires_at<?)", "ix_sessions_user_id (user_id=?)"]
    assert len(captured) == len(expected)
    with ctx.engine.connect() as conn:
        for (statement, parameters), index in zip(captured, expected, strict=True):
            plan = " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "SCAN" not in plan and index in plan, (statement, plan)


def test_an_expired_record_is_refused_and_cleared_at_the_next_login(factory, browser_client, browsers, ctx):
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    assert logged_in(browser_client)
    # The cookie's own expiry is hours away; only the record says the session is over.
    with ctx.engine.begin() as conn:
        conn.execute(sessions.update().where(sessions.c.user_id == user.id)
                     .values(expires_at=int(time.time() * 1000) - 1))
    # A record changed behind this process's back is seen at once: pages read the session record
    # on every request (the actor cache serves only the annotate loop: docs/security.md).
    assert not logged_in(browser_client)
    assert browser_client.get("/").status_code == 303
    assert session_count(ctx, user.id) == 1
    log_in(browsers(), user.username)  # any login sweeps expired records away
    assert session_count(ctx, user.id) == 1 and not logged_in(browser_client)


def test_the_plain_nonce_is_not_stored(factory, browser_client, settings, ctx):
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    session = SessionSigner(settings.secret_key).verify(browser_client.cookies[SESSION_COOKIE])
    assert session is not None and session.user_id == user.id
    with ctx.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(sessions)).mappings()]
    assert len(rows) == 1
    assert rows[0]["nonce_hash"] == hashlib.sha256(session.nonce.encode()).hexdigest()
    assert rows[0]["expires_at"] == session.expires_at * 1000 and rows[0]["user_id"] == user.id
    assert not any(session.nonce in str(value) for value in rows[0].values())


def test_security_headers_everywhere_the_swagger_page_included(factory, browser_client):
    # Issue 12.9: the Swagger page was exempt from the CSP (FastAPI's needs an inline script).
    for path in ("/login", "/static/css/goldlabel.css", "/api/v1/openapi.json", "/healthz", "/api/v1/docs",
                 "/vendor/api-docs/swagger-ui-bundle.js"):
        res = browser_client.get(path)
        assert res.status_code == 200, path
        assert "frame-ancestors 'none'" in res.headers["content-security-policy"], path
        assert res.headers["x-content-type-options"] == "nosniff"
    page = browser_client.get("/api/v1/docs").text
    assert "<script>" not in page and "https://" not in page
    redoc = browser_client.get("/api/v1/redoc", follow_redirects=False)
    assert redoc.status_code == 307 and redoc.headers["location"] == "/api/v1/docs"


def test_workspace_page_reveals_no_quality_settings(factory, browser_client):
    user = factory.make_user(password=PASSWORD)
    project = factory.make_project(annotators=[user], settings={"gold_rate": 0.3, "qualification_gold": 5})
    log_in(browser_client, user.username)
    html = browser_client.get(f"/projects/{project['id']}/annotate").text
    assert "gold_rate" not in html and "qualification" not in html
    assert browser_client.get("/projects/999999/annotate").status_code == 404


def test_session_signer_round_trip_and_expiry():
    signer = SessionSigner("k")
    cookie, session = signer.issue(7, now=1000)
    assert signer.verify(cookie, now=1001) == session
    assert signer.verify(cookie, now=session.expires_at) is None
    assert signer.check_csrf(session.nonce, signer.csrf_token(session.nonce))
    assert not signer.check_csrf(session.nonce, signer.csrf_token("other"))
    assert signer.verify("garbage") is None and signer.verify(None) is None
