"""Security headers on every page, and CSRF protection of cookie-authenticated writes, as the
browser experiences them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}


def assert_security_headers(headers: dict) -> None:
    csp = headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_pages_send_security_headers(page, server, ui):
    annotator = server.make_user()
    project = server.make_project(SCHEMA, annotators=[annotator])
    assert_security_headers(page.goto("/login").headers)
    ui.login(annotator)
    for path in ("/", f"/projects/{project['id']}/annotate", "/static/js/workspace.js"):
        response = page.goto(path)
        assert response.status == 200
        assert_security_headers(response.headers)
        if path.endswith("/annotate"):
            # Let the workspace finish its first requests before navigating away.
            page.wait_for_function("() => document.getElementById('stat-today').textContent !== '–'")


def test_cookie_write_without_csrf_token_is_refused(page, server, ui):
    annotator = server.make_user()
    project = server.make_project(SCHEMA, annotators=[annotator])
    server.add_items(project, [{"external_id": "a", "data": {"text": "a"}}])
    ui.login(annotator)
    page.allowed_problems = ("403",)
    url = f"/api/v1/projects/{project['id']}/next"
    without = page.evaluate("(url) => fetch(url, {method: 'POST'}).then(r => r.json().then(b => [r.status, b.code]))",
                            url)
    assert without == [403, "csrf_failed"]
    forged = page.evaluate(
        "(url) => fetch(url, {method: 'POST', headers: {'X-CSRF-Token': 'forged'}}).then(r => r.status)", url)
    assert forged == 403
    # The real page's token works: the cookie session is then as good as a bearer token.
    token = page.get_attribute("meta[name=csrf-token]", "content")
    ok = page.evaluate(
        "([url, token]) => fetch(url, {method: 'POST', headers: {'X-CSRF-Token': token}}).then(r => r.status)",
        [url, token])
    assert ok == 200
    # A form posted without the token (what a forged cross-site form would send) is refused too.
    page.goto("/")
    status = page.evaluate("""() => fetch('/logout', {method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'x=1'}).then(r => r.status)""")
    assert status == 403
    assert page.goto("/").url.endswith("/")  # still logged in
