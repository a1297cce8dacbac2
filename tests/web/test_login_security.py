"""Login hardening (issue 17): login CSRF (item 4), throttling and the password policy (item 5)."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services import users as user_service
from goldlabel.services.login_guard import LoginGuard, TooManyAttempts, guard_of
from goldlabel.services.sessions import PRESESSION_COOKIE, SESSION_COOKIE

PASSWORD = "correct horse battery"

# Hashing at its real cost: the bound on concurrent hashes is only tested while hashes take long
# enough to overlap (tests/conftest.py makes them cheap elsewhere).
pytestmark = pytest.mark.usefixtures("full_cost_password_hashes")


def test_passwords_are_hashed_with_owasp_argon2id_parameters():
    assert user_service.hash_password(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=")


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


# -- item 5: throttling, bounded hashing, password policy ------------------------------------------

def browser_at(app, address: str) -> tuple[httpx.Client, ASGIAppTransport]:
    transport = ASGIAppTransport(app, client=(address, 40000))
    return httpx.Client(transport=transport, base_url="http://goldlabel.test"), transport


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    page = client.get("/login").text
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_account_locks_after_failures_and_refuses_without_hashing(factory, app):
    user = factory.make_user(password=PASSWORD)
    guard = guard_of(factory.ctx)
    # Each attempt from another address: only the account's count matters here.
    for i in range(factory.ctx.settings.login_max_failures):
        client, transport = browser_at(app, f"10.0.1.{i}")
        assert log_in(client, user.username, "not the password at all").status_code == 401
        transport.close()
    hashed = guard.hashes
    client, transport = browser_at(app, "10.0.1.200")
    res = log_in(client, user.username, PASSWORD)  # the right password, but locked
    transport.close()
    assert res.status_code == 429 and int(res.headers["retry-after"]) >= factory.ctx.settings.login_lockout_s
    assert "Too many attempts" in res.text
    assert guard.hashes == hashed  # refused before Argon2 ran
    assert SESSION_COOKIE not in client.cookies


def test_backoff_doubles_and_success_clears(settings, ctx):
    guard = LoginGuard(settings, ctx.engine)
    base = settings.login_lockout_s
    for _ in range(settings.login_max_failures):
        guard.failed("Alice", now=0.0)
    with pytest.raises(TooManyAttempts) as locked:
        guard.admit("alice", "10.0.0.1", now=1.0)  # case-insensitive
    assert locked.value.extra["retry_after_s"] == base - 1
    guard.admit("alice", "10.0.0.1", now=base + 0.1)  # lock over
    guard.failed("alice", now=base + 0.1)  # one more failure: twice as long
    with pytest.raises(TooManyAttempts) as again:
        guard.admit("alice", "10.0.0.2", now=base + 1)
    assert again.value.extra["retry_after_s"] == pytest.approx(2 * base - 0.9, abs=1)
    for _ in range(20):
        guard.failed("alice", now=base + 1)
    with pytest.raises(TooManyAttempts) as capped:
        guard.admit("alice", "10.0.0.3", now=base + 2)
    assert capped.value.extra["retry_after_s"] <= settings.login_lockout_max_s
    guard.succeeded("ALICE")
    guard.admit("alice", "10.0.0.4", now=base + 3)


def test_one_address_is_rate_limited_across_accounts(factory, app):
    guard = guard_of(factory.ctx)
    per_minute = factory.ctx.settings.login_attempts_per_minute
    client, transport = browser_at(app, "10.0.2.1")
    started = time.monotonic()
    statuses = [log_in(client, f"nobody{i}", "password spraying").status_code for i in range(per_minute + 5)]
    elapsed = time.monotonic() - started
    transport.close()
    assert statuses[:per_minute] == [401] * per_minute
    # The bucket refills per_minute attempts a minute, while these ran (Argon2 takes a while).
    allowed = per_minute + math.ceil(elapsed * per_minute / 60)
    assert statuses.count(401) <= allowed and statuses[-1] == 429 and set(statuses) == {401, 429}
    assert guard.hashes == statuses.count(401)  # the refused ones cost no hash
    # Another address is not affected.
    other, transport = browser_at(app, "10.0.2.2")
    assert log_in(other, "nobody", "password spraying").status_code == 401
    transport.close()


def test_concurrent_logins_hash_at_most_the_bound(factory, app):
    factory.make_user(username="victim", password=PASSWORD)
    guard = guard_of(factory.ctx)
    bound = factory.ctx.settings.password_hash_concurrency
    clients = [browser_at(app, f"10.0.3.{i}") for i in range(16)]
    tokens = []
    for client, _ in clients:
        page = client.get("/login").text
        tokens.append(page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0])
    barrier = threading.Barrier(16)

    def attempt(i: int) -> int:
        client, _ = clients[i]
        barrier.wait()
        return client.post("/login", data={"username": f"user{i}", "password": "wrong wrong wrong",
                                           "csrf_token": tokens[i]}).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(attempt, range(16)))
    for client, transport in clients:
        client.close()
        transport.close()
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) >= bound  # the bound ran; the rest were told to retry
    assert guard.hashing_peak <= bound  # never more Argon2 (64 MiB each) at once than the bound


@pytest.mark.parametrize("weak", ["password123", "qwertyuiop12", "1234567890", "short"])
def test_weak_passwords_are_refused(factory, weak):
    admin = factory.api_as(factory.make_user("admin"))
    res = admin.post("/api/v1/users", json={"username": "newbie", "role": "annotator", "password": weak})
    assert res.status_code == 422 and res.json()["code"] in ("weak_password", "validation_failed"), res.text
    ok = admin.post("/api/v1/users", json={"username": "newbie", "role": "annotator", "password": PASSWORD})
    assert ok.status_code == 201, ok.text
    user_id = ok.json()["id"]
    res = admin.patch(f"/api/v1/users/{user_id}", json={"password": weak})
    assert res.status_code == 422, res.text
    # The username itself does not make a password.
    res = admin.post("/api/v1/users", json={"username": "quentin.tarantino", "role": "annotator",
                                            "password": "quentin.tarantino"})
    assert res.status_code == 422 and res.json()["code"] == "weak_password"


# -- item 10: suspension and logout scoped to the manager's projects -------------------------------

def test_managers_suspend_and_log_out_only_their_projects_annotators(factory):
    annotator = factory.make_user()
    own = factory.make_project(annotators=[annotator])
    other_manager = factory.make_user("manager")
    factory.make_project(other_manager)  # manages a project, not the annotator's
    outsider = factory.api_as(other_manager)
    res = outsider.patch(f"/api/v1/users/{annotator.id}", json={"is_active": False})
    assert res.status_code == 403 and res.json()["code"] == "forbidden"
    assert outsider.delete(f"/api/v1/users/{annotator.id}/sessions").status_code == 403
    assert factory.api_as(own["manager"]).get(f"/api/v1/users/{annotator.id}").json()["is_active"] is True
    # The annotator's own manager may; so may an admin.
    mine = factory.api_as(own["manager"])
    assert mine.delete(f"/api/v1/users/{annotator.id}/sessions").status_code == 204
    assert mine.patch(f"/api/v1/users/{annotator.id}", json={"is_active": False}).json()["is_active"] is False
    admin = factory.api_as(factory.make_user("admin"))
    assert admin.patch(f"/api/v1/users/{annotator.id}", json={"is_active": True}).status_code == 200
    # A user in no project yet (just created) is anyone's to manage.
    newbie = factory.make_user()
    assert outsider.patch(f"/api/v1/users/{newbie.id}", json={"is_active": False}).status_code == 200


def test_limits_hold_across_processes(factory, settings, app):
    """Two app instances with their own Context on one database (two server processes): failed
    logins through one lock the account in the other, and one address's attempts count once
    across both."""
    from goldlabel.app import create_app
    from goldlabel.services.context import Context

    user = factory.make_user(password=PASSWORD)
    other_ctx = Context.from_settings(settings)
    other_app = create_app(context=other_ctx, migrate=False)
    try:
        # Failures alternate between the two processes; the right password then fails in both.
        apps = (app, other_app)
        for i in range(settings.login_max_failures):
            client, transport = browser_at(apps[i % 2], f"10.0.4.{i}")
            assert log_in(client, user.username, "not the password at all").status_code == 401
            transport.close()
        for target in apps:
            client, transport = browser_at(target, "10.0.4.200")
            res = log_in(client, user.username, PASSWORD)
            transport.close()
            assert res.status_code == 429, res.text
        # One address's budget is shared: the two guards together admit per_minute attempts.
        guards = (guard_of(factory.ctx), guard_of(other_ctx))
        now = time.time()
        for i in range(settings.login_attempts_per_minute):
            guards[i % 2].admit(f"someone{i}", "10.0.5.1", now=now)
        for guard in guards:
            with pytest.raises(TooManyAttempts):
                guard.admit("someone-else", "10.0.5.1", now=now)
        guards[1].admit("someone-else", "10.0.5.1", now=now + 60 / settings.login_attempts_per_minute + 0.01)
        # A success through one clears the account for both.
        guards[0].succeeded(user.username)
        guards[1].admit(user.username, "10.0.5.2")
    finally:
        other_ctx.close()
