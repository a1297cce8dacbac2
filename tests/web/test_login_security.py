"""Login hardening (issue 17): login CSRF (item 4), throttling and the password policy (item 5)."""

from __future__ import annotations

import httpx
import pytest

from goldlabel.client.transport import ASGIAppTransport
from goldlabel.web.session import PRESESSION_COOKIE, SESSION_COOKIE

PASSWORD = "correct horse battery"


@pytest.fixture
def fresh_browser(app):
    """A browser that never opened the login page: no pre-session cookie."""
    transport = ASGIAppTransport(app)
    client = httpx.Client(transport=transport, base_url="http://goldlabel.test")
    yield client
    client.close()
    transport.close()


def test_login_without_the_pre_session_cookie_is_refused(factory, fresh_browser):
    # What a page on another site can send: the form fields, no cookie of ours (SameSite=lax
    # keeps it home), so no token bound to one.
    user = factory.make_user(password=PASSWORD)
    res = fresh_browser.post("/login", data={"username": user.username, "password": PASSWORD})
    assert res.status_code == 403
    assert SESSION_COOKIE not in fresh_browser.cookies
    # A token made up for an empty nonce does not help either.
    res = fresh_browser.post("/login", data={"username": user.username, "password": PASSWORD,
                                             "csrf_token": ""})
    assert res.status_code == 403
    # The login page sets the cookie and the token: then it works.
    page = fresh_browser.get("/login")
    assert PRESESSION_COOKIE in fresh_browser.cookies
    token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    res = fresh_browser.post("/login", data={"username": user.username, "password": PASSWORD,
                                             "csrf_token": token})
    assert res.status_code == 303 and SESSION_COOKIE in fresh_browser.cookies
