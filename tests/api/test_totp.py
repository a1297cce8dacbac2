"""Two-factor login (issue 17, item 15): enrolment, the login's second step, replay and
throttling, recovery codes, turning it off, and roles that must enrol. Codes are computed from
the secret with pyotp, as an authenticator app would."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from goldlabel.app import create_app
from goldlabel.client.transport import ASGIAppTransport
from goldlabel.config import Settings
from goldlabel.services import projects as project_service
from goldlabel.services import users as user_service
from goldlabel.services.context import Context
from goldlabel.services.sessions import PENDING_COOKIE, SESSION_COOKIE

PASSWORD = "amber lantern quietly 41"
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}


@pytest.fixture
def browser(app):
    transport = ASGIAppTransport(app)
    client = httpx.Client(transport=transport, base_url="http://goldlabel.test")
    yield client
    client.close()
    transport.close()


def csrf_of(page: str) -> str:
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def password_step(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def code_step(client: httpx.Client, code: str) -> httpx.Response:
    token = csrf_of(client.get("/login/code").text)
    return client.post("/login/code", data={"code": code, "csrf_token": token})


def enrol(api: httpx.Client, user_id: int) -> tuple[pyotp.TOTP, list[str], int]:
    """Enrol through the API; returns the app's TOTP, the recovery codes and the step used."""
    res = api.post(f"/api/v1/users/{user_id}/totp")
    assert res.status_code == 201, res.text
    secret = res.json()["secret"]
    totp = pyotp.TOTP(secret)
    assert res.json()["otpauth_uri"].startswith("otpauth://totp/")
    now = time.time()
    res = api.post(f"/api/v1/users/{user_id}/totp/confirm", json={"code": totp.at(now)})
    assert res.status_code == 200, res.text
    return totp, res.json()["recovery_codes"], int(now) // 30


def audit_actions(factory, **params) -> list[str]:
    admin = factory.make_user("admin")
    res = factory.api_as(admin).get("/api/v1/audit", params=params)
    assert res.status_code == 200, res.text
    return [e["action"] for e in res.json()["items"]]


def test_enrolment_then_login_asks_for_the_code(factory, browser, app):
    user = factory.make_user("manager", password=PASSWORD)
    api = factory.api_as(user)
    assert api.get(f"/api/v1/users/{user.id}/totp").json()["enabled"] is False

    res = api.post(f"/api/v1/users/{user.id}/totp")
    secret = res.json()["secret"]
    assert api.get(f"/api/v1/users/{user.id}/totp").json()["pending"] is True
    wrong = api.post(f"/api/v1/users/{user.id}/totp/confirm", json={"code": "000000"})
    if wrong.status_code != 422:  # 000000 may be the real code once in a million
        pytest.skip("the random secret's code happened to be 000000")
    assert wrong.json()["code"] == "invalid_code"
    now = time.time()
    res = api.post(f"/api/v1/users/{user.id}/totp/confirm", json={"code": pyotp.TOTP(secret).at(now)})
    codes = res.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    status = api.get(f"/api/v1/users/{user.id}/totp")
    assert status.json() == {**status.json(), "enabled": True, "pending": False, "recovery_codes_left": 10}
    # Never returned after enrolment: not by the status, nor by a second start.
    assert secret not in status.text
    again = api.post(f"/api/v1/users/{user.id}/totp")
    assert again.status_code == 409 and again.json()["code"] == "totp_enabled" and secret not in again.text

    # The password alone gives no session, only the code form.
    res = password_step(browser, user.username)
    assert res.status_code == 303 and res.headers["location"].startswith("/login/code")
    assert SESSION_COOKIE not in browser.cookies and PENDING_COOKIE in browser.cookies
    assert browser.get("/api/v1/users/me").status_code == 401
    # The code used at enrolment cannot be used again (replay), a wrong one neither.
    assert code_step(browser, pyotp.TOTP(secret).at(now)).status_code == 401
    assert code_step(browser, "123 456" if pyotp.TOTP(secret).at(now + 30) != "123456" else "654321").status_code == 401
    res = code_step(browser, pyotp.TOTP(secret).at(now + 30))
    assert res.status_code == 303, res.text
    assert browser.get("/api/v1/users/me").json()["id"] == user.id
    # ...and that code is spent too.
    with httpx.Client(transport=ASGIAppTransport(app), base_url="http://goldlabel.test") as other:
        password_step(other, user.username)
        assert code_step(other, pyotp.TOTP(secret).at(now + 30)).status_code == 401

    actions = audit_actions(factory, actor_id=user.id)
    assert {"totp.enrol", "totp.enable", "login.success"} <= set(actions)
    failures = audit_actions(factory, action="login.failure", actor_name=user.username)
    assert len(failures) == 3


def test_recovery_code_logs_in_once(factory, browser):
    user = factory.make_user("annotator", password=PASSWORD)
    _totp, codes, _step = enrol(factory.api_as(user), user.id)
    password_step(browser, user.username)
    assert code_step(browser, codes[3].upper()).status_code == 303  # case and spaces do not matter
    assert factory.api_as(user).get(f"/api/v1/users/{user.id}/totp").json()["recovery_codes_left"] == 9
    browser.cookies.clear()
    password_step(browser, user.username)
    assert code_step(browser, codes[3]).status_code == 401
    assert "totp.recovery_used" in audit_actions(factory, actor_id=user.id)


def test_code_step_needs_the_password_step_and_csrf(factory, browser):
    user = factory.make_user("annotator", password=PASSWORD)
    totp, _codes, step = enrol(factory.api_as(user), user.id)
    # No pending login: the form sends you back, and a post gets nothing.
    assert browser.get("/login/code").headers["location"] == "/login"
    token = csrf_of(browser.get("/login").text)
    res = browser.post("/login/code", data={"code": totp.at((step + 1) * 30), "csrf_token": token})
    assert res.status_code == 401 and SESSION_COOKIE not in browser.cookies
    # A forged pending cookie (wrong key) is no better.
    browser.cookies.set(PENDING_COOKIE, "eyJ1IjoxLCJlIjo5OTk5OTk5OTk5fQ.forged")
    res = browser.post("/login/code", data={"code": totp.at((step + 1) * 30), "csrf_token": token})
    assert res.status_code == 401
    # Without the CSRF token: refused before anything else.
    password_step(browser, user.username)
    assert browser.post("/login/code", data={"code": totp.at((step + 1) * 30)}).status_code == 403


def test_wrong_codes_lock_the_account_like_wrong_passwords(factory, browser, ctx):
    user = factory.make_user("annotator", password=PASSWORD)
    totp, _codes, step = enrol(factory.api_as(user), user.id)
    password_step(browser, user.username)
    right = totp.at((step + 1) * 30)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(ctx.settings.login_max_failures):
        assert code_step(browser, wrong).status_code == 401
    res = code_step(browser, right)
    assert res.status_code == 429 and int(res.headers["Retry-After"]) >= 1
    assert SESSION_COOKIE not in browser.cookies


def test_turning_it_off(factory):
    user = factory.make_user("annotator", password=PASSWORD)
    other = factory.make_user("annotator")
    admin = factory.make_user("admin")
    api = factory.api_as(user)
    totp, _codes, step = enrol(api, user.id)
    # Others cannot see or touch it; an admin can see it, not enrol for the user.
    assert factory.api_as(other).get(f"/api/v1/users/{user.id}/totp").status_code == 404
    assert factory.api_as(other).post(f"/api/v1/users/{user.id}/totp/disable", json={}).status_code == 404
    assert factory.api_as(admin).get(f"/api/v1/users/{user.id}/totp").json()["enabled"] is True
    assert factory.api_as(admin).post(f"/api/v1/users/{other.id}/totp").status_code == 403
    # The user needs a current code (a stolen session alone cannot turn it off).
    res = api.post(f"/api/v1/users/{user.id}/totp/disable", json={})
    assert res.status_code == 422 and res.json()["code"] == "invalid_code"
    res = api.post(f"/api/v1/users/{user.id}/totp/disable", json={"code": totp.at((step + 1) * 30)})
    assert res.status_code == 200 and res.json()["enabled"] is False
    # An admin turns off another user's without a code (a lost phone).
    enrol(api, user.id)
    res = factory.api_as(admin).post(f"/api/v1/users/{user.id}/totp/disable", json={})
    assert res.status_code == 200 and res.json()["enabled"] is False
    entries = factory.api_as(admin).get("/api/v1/audit", params={"action": "totp.disable"}).json()["items"]
    assert [e["detail"]["by_admin"] for e in entries] == [True, False]  # newest first


@pytest.fixture
def strict(settings):
    """An app where reviewers must use two-factor login."""
    context = Context.from_settings(settings.model_copy(update={"totp_required_roles": "reviewer, admin"}))
    yield context, create_app(context=context, migrate=False)
    context.close()


def test_required_role_can_only_enrol(strict):
    context, app = strict
    reviewer = user_service.create_user(context, None, "careful", "reviewer", PASSWORD)
    token = user_service.create_token(context, None, reviewer["id"])["token"]
    transport = ASGIAppTransport(app)
    api = httpx.Client(transport=transport, base_url="http://goldlabel.test",
                       headers={"Authorization": f"Bearer {token}"})
    browser = httpx.Client(transport=transport, base_url="http://goldlabel.test")
    try:
        # The API: who you are and the enrolment, nothing else.
        res = api.get("/api/v1/projects")
        assert res.status_code == 403 and res.json()["code"] == "totp_enrolment_required"
        assert api.post(f"/api/v1/users/{reviewer['id']}/tokens", json={"name": "x"}).status_code == 403
        assert api.get("/api/v1/users/me").json()["id"] == reviewer["id"]
        # The annotate loop's fast lane does not serve them either (a lease would be 204 here:
        # the project has no items), and a second run of the check is no cache hit.
        project = project_service.create_project(context, None, "p", SCHEMA)
        project_service.set_member(context, None, project["id"], reviewer["id"], "annotator")
        for _ in range(2):
            res = api.post(f"/api/v1/projects/{project['id']}/next")
            assert res.status_code == 403 and res.json()["code"] == "totp_enrolment_required"
        # Enrolment itself works with the token (a write: past the body guard).
        assert api.post(f"/api/v1/users/{reviewer['id']}/totp").status_code == 201
        # The browser: after the password, every page leads to the account page.
        res = password_step(browser, "careful")
        assert res.status_code == 303 and SESSION_COOKIE in browser.cookies
        for path in ("/", "/console", "/console/users"):
            res = browser.get(path)
            assert res.status_code == 303 and res.headers["location"] == "/account?enrol=required", path
        page = browser.get("/account")
        assert page.status_code == 200 and 'data-testid="enrol-required"' in page.text
        assert browser.get("/api/v1/projects").status_code == 403
        # Enrolling from the browser session lifts it, for the session and the token alike.
        csrf = {"X-CSRF-Token": csrf_of(page.text)}
        secret = browser.post(f"/api/v1/users/{reviewer['id']}/totp", headers=csrf).json()["secret"]
        res = browser.post(f"/api/v1/users/{reviewer['id']}/totp/confirm", headers=csrf,
                           json={"code": pyotp.TOTP(secret).now()})
        assert res.status_code == 200, res.text
        assert browser.get("/api/v1/projects").status_code == 200
        assert api.get("/api/v1/projects").status_code == 200
        assert browser.get("/").status_code == 200
        # Roles not listed are not asked.
        annotator = user_service.create_user(context, None, "relaxed", "annotator", PASSWORD)
        other = httpx.Client(transport=transport, base_url="http://goldlabel.test")
        password_step(other, annotator["username"])
        assert other.get("/").status_code == 200
        other.close()
    finally:
        api.close()
        browser.close()
        transport.close()


def test_required_roles_setting_is_checked():
    with pytest.raises(ValueError, match="not a role"):
        Settings(totp_required_roles="admin, superuser")
    assert Settings(totp_required_roles=" admin,reviewer ").totp_roles == {"admin", "reviewer"}


# --------------------------------------------------------------------- the secret at rest


def stored_secret(ctx: Context, user_id: int) -> str | None:
    from goldlabel.storage import users as user_store
    from goldlabel.storage.engine import read_tx

    with read_tx(ctx.engine) as conn:
        return user_store.fetch_user(conn, user_id)["totp_secret"]


def revealed_by(stored: str, secret: str) -> bool:
    """Whether the stored value gives the secret away (as it is, or decoded from base32 or
    base64)."""
    raw = base64.b32decode(secret)
    decoded = [stored.encode()]
    for part in stored.split(":"):
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                decoded.append(decode(part + "=" * (-len(part) % 4)))
            except ValueError:
                pass
    return any(secret.encode() in d or raw in d or secret.lower().encode() in d for d in decoded)


def test_the_database_alone_does_not_reveal_the_secret(factory, ctx, settings):
    """The stored secret is sealed under a key outside the database (the key file, mode 0600):
    the database holds neither the secret nor its bytes, and without the key the codes it would
    check cannot be computed; the secret is bound to its row."""
    import os
    import stat

    from goldlabel.services.secret_box import SecretBox, SecretKeyError, load_box, new_key

    user = factory.make_user("manager")
    api = factory.api_as(user)
    res = api.post(f"/api/v1/users/{user.id}/totp")
    secret = res.json()["secret"]
    stored = stored_secret(ctx, user.id)
    assert stored is not None and stored.startswith("v1:")
    assert not revealed_by(stored, secret)
    assert stat.S_IMODE(os.stat(settings.totp_key_file).st_mode) == 0o600
    # The key file's key opens it; another key does not; nor does it open as another user's.
    assert load_box(settings).open(stored, f"user:{user.id}") == secret
    other = SecretBox([base64.urlsafe_b64decode(new_key() + "=")])
    with pytest.raises(SecretKeyError):
        other.open(stored, f"user:{user.id}")
    with pytest.raises(SecretKeyError):
        load_box(settings).open(stored, f"user:{user.id + 1}")
    # And the enrolment still completes with a code from the secret shown once.
    res = api.post(f"/api/v1/users/{user.id}/totp/confirm", json={"code": pyotp.TOTP(secret).now()})
    assert res.status_code == 200, res.text


def test_plain_secrets_are_sealed_at_start_and_rotation_reseals(factory, ctx, settings, browser):
    """A secret stored in plain (before migration 0014) is sealed when a server starts, and
    still logs in; after a rotation (a new key first, the old one after it) a start re-seals it
    under the new key, and the old key can then go."""
    from goldlabel.services import totp as totp_service
    from goldlabel.services.secret_box import key_id, load_box, new_key
    from goldlabel.storage import users as user_store
    from goldlabel.storage.engine import write_tx

    user_service.create_user(ctx, None, "legacy", "manager", PASSWORD)
    row = user_service.find_user(ctx, factory.make_user("admin"), "legacy")
    secret = pyotp.random_base32(32)
    with write_tx(ctx.engine) as conn:  # as 0013 stored it
        user_store.update_user(conn, row["id"], totp_secret=secret, totp_enabled_at=1, totp_recovery=[])
    assert totp_service.seal_stored_secrets(ctx) == 1
    sealed = stored_secret(ctx, row["id"])
    assert sealed.startswith("v1:") and not revealed_by(sealed, secret)
    assert totp_service.seal_stored_secrets(ctx) == 0  # nothing left to seal
    assert password_step(browser, "legacy").headers["location"].startswith("/login/code")
    logged_in = code_step(browser, pyotp.TOTP(secret).now())
    assert logged_in.status_code == 303 and SESSION_COOKIE in browser.cookies

    old_key = Path(settings.totp_key_file).read_text().strip()
    fresh = new_key()
    rotated = Context.from_settings(settings.model_copy(update={"totp_key": f"{fresh},{old_key}"}))
    try:
        assert totp_service.seal_stored_secrets(rotated) == 1
        resealed = stored_secret(rotated, row["id"])
        assert resealed.startswith(f"v1:{key_id(base64.urlsafe_b64decode(fresh + '='))}:")
        only_new = settings.model_copy(update={"totp_key": fresh})
        assert load_box(only_new).open(resealed, f"user:{row['id']}") == secret
    finally:
        rotated.close()
