"""Sessions, CSRF and security headers of the web layer, in process (no browser), on both
database backends."""

from __future__ import annotations

import re

import httpx
import pytest

from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services import users as user_service
from goldlabel.web.session import SESSION_COOKIE, SessionSigner

PASSWORD = "password123"


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
    res = browser_client.post("/login", data={"username": user.username, "password": "password123"})
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


def test_tampered_or_foreign_cookies_are_ignored(factory, browser_client, settings):
    user = factory.make_user(password=PASSWORD)
    other = SessionSigner("another key").issue(user.id)[0]
    browser_client.cookies.set(SESSION_COOKIE, other)
    assert browser_client.get("/api/v1/users/me").status_code == 401
    good = SessionSigner(settings.secret_key).issue(user.id)[0]
    payload, sig = good.split(".")
    browser_client.cookies.set(SESSION_COOKIE, f"{payload}x.{sig}")
    assert browser_client.get("/api/v1/users/me").status_code == 401
    browser_client.cookies.set(SESSION_COOKIE, good)
    assert browser_client.get("/api/v1/users/me").status_code == 200


def test_suspended_user_loses_the_session_at_once(factory, browser_client, ctx):
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    assert browser_client.get("/").status_code == 200
    user_service.update_user(ctx, factory.make_user("admin"), user.id, {"is_active": False})
    assert browser_client.get("/").status_code == 303
    assert browser_client.get("/api/v1/users/me").status_code == 401


def test_logout_needs_the_token_and_clears_the_cookie(factory, browser_client):
    user = factory.make_user(password=PASSWORD)
    log_in(browser_client, user.username)
    assert browser_client.post("/logout", data={}).status_code == 403
    token = csrf_of(browser_client.get("/").text)
    res = browser_client.post("/logout", data={"csrf_token": token})
    assert res.status_code == 303 and res.headers["location"] == "/login"
    assert SESSION_COOKIE not in browser_client.cookies


def test_security_headers_everywhere_but_the_swagger_page(factory, browser_client):
    for path in ("/login", "/static/css/goldlabel.css", "/api/v1/openapi.json", "/healthz"):
        headers = browser_client.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
    docs = browser_client.get("/api/v1/docs").headers
    assert "content-security-policy" not in docs and docs["x-content-type-options"] == "nosniff"


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
