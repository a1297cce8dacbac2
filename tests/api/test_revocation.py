"""Revocation at once across processes (issue 13 item 1, issue 17 item 6): a token revoked, a
session ended, a user suspended or their role changed through one server process is refused by
every other on its very next request, however long that process keeps verified actors
(``token_cache_s``): each revocation moves the user's auth version on, and the annotate loop's
own statements read it back (services/access.py ``check_auth_version``).

Two apps with their own Context on one database stand for two server processes; the last tests
start two real ``goldlabel serve`` processes on one database (a SQLite file, a PostgreSQL
database)."""

from __future__ import annotations

import httpx
import pytest
from live_server import LiveServer, start_all, stop_all

from goldlabel.app import create_app
from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services.context import Context
from goldlabel.storage.engine import read_tx
from goldlabel.storage.tables import answers

# Far longer than any test: nothing here may rely on a cache entry running out.
LONG_CACHE_S = 3600.0


class Process:
    def __init__(self, settings) -> None:
        self.ctx = Context.from_settings(settings)
        self.app = create_app(context=self.ctx, migrate=False)
        self.transport = ASGIAppTransport(self.app)

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(transport=self.transport, base_url="http://goldlabel.test",
                            headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.transport.close()
        self.ctx.close()


@pytest.fixture
def processes(settings):
    tuned = settings.model_copy(update={"token_cache_s": LONG_CACHE_S})
    pair = (Process(tuned), Process(tuned))
    yield pair
    for p in pair:
        p.close()


def lease(client: httpx.Client, project_id: int) -> httpx.Response:
    return client.post(f"/api/v1/projects/{project_id}/next")


def count_answers(ctx: Context) -> int:
    with read_tx(ctx.engine) as conn:
        return len(conn.execute(answers.select()).all())


@pytest.mark.parametrize("how", ["revoke", "suspend", "end_sessions_and_revoke"])
def test_a_revocation_is_refused_by_the_other_process_on_its_next_request(factory, processes, how):
    annotator = factory.make_user()
    project = factory.make_project(annotators=[annotator])
    factory.add_items(project, 5)
    token = factory.token_for(annotator)
    a, b = processes
    admin = a.client(factory.token_for(factory.make_user("admin")))
    in_a, in_b = a.client(token), b.client(token)
    assert lease(in_a, project["id"]).status_code == 200
    held = lease(in_b, project["id"])  # the actor is cached in b now
    assert held.status_code == 200
    assert b.app.fast_lane.counts["verified"] == 1
    if how == "suspend":
        assert admin.patch(f"/api/v1/users/{annotator.id}", json={"is_active": False}).status_code == 200
    else:
        if how == "end_sessions_and_revoke":
            assert admin.delete(f"/api/v1/users/{annotator.id}/sessions").status_code == 204
        token_id = admin.get(f"/api/v1/users/{annotator.id}/tokens").json()[0]["id"]
        assert admin.delete(f"/api/v1/users/{annotator.id}/tokens/{token_id}").status_code == 204
    before = count_answers(a.ctx)
    # The very next request in b, a submit on the lease b handed out: refused, nothing written.
    refused = in_b.post(f"/api/v1/projects/{project['id']}/answers",
                        json={"lease_token": held.json()["token"], "value": {"sentiment": "positive"}})
    assert refused.status_code == 401, refused.text
    assert count_answers(a.ctx) == before
    assert lease(in_b, project["id"]).status_code == 401
    assert lease(in_a, project["id"]).status_code == 401


def test_another_credential_of_the_same_user_keeps_working(factory, processes):
    """One of two tokens revoked: the other, cached in b at the old auth version, is verified
    again once (by the app) and serves on; b's cache is refreshed, so the fast lane serves it
    again after that."""
    annotator = factory.make_user()
    project = factory.make_project(annotators=[annotator])
    factory.add_items(project, 5)
    a, b = processes
    kept = a.client(factory.token_for(annotator)).post(f"/api/v1/users/{annotator.id}/tokens",
                                                       json={"name": "second"}).json()["token"]
    in_b = b.client(kept)
    first = lease(in_b, project["id"])
    assert first.status_code == 200
    admin = a.client(factory.token_for(factory.make_user("admin")))
    token_id = admin.get(f"/api/v1/users/{annotator.id}/tokens").json()[0]["id"]
    assert admin.delete(f"/api/v1/users/{annotator.id}/tokens/{token_id}").status_code == 204
    passed = b.app.fast_lane.counts["app"]
    done = in_b.post(f"/api/v1/projects/{project['id']}/answers",
                     json={"lease_token": first.json()["token"], "value": {"sentiment": "positive"}})
    assert done.status_code == 201, done.text
    assert b.app.fast_lane.counts["app"] == passed + 1  # the stale actor went to the app once
    assert lease(in_b, project["id"]).status_code == 200
    assert b.app.fast_lane.counts["app"] == passed + 1  # then the fast lane again


def test_a_role_change_is_seen_at_once(factory, processes):
    """An admin demoted to annotator through a loses, in b at once, the admin's right to
    annotate a project they are not a member of (the fast lane had them cached as an admin)."""
    admin_user = factory.make_user("admin")
    project = factory.make_project()
    factory.add_items(project, 3)
    a, b = processes
    in_b = b.client(factory.token_for(admin_user))
    assert lease(in_b, project["id"]).status_code == 200
    other_admin = a.client(factory.token_for(factory.make_user("admin")))
    assert other_admin.patch(f"/api/v1/users/{admin_user.id}", json={"role": "annotator"}).status_code == 200
    assert lease(in_b, project["id"]).status_code == 404  # not a member: the project is not theirs


def test_an_ended_session_is_refused_by_the_other_process_at_once(factory, processes, settings):
    """Sessions share the actor cache and its rule, on the annotate loop's fast path (session
    cookie + CSRF header) as for a token: a logout in a (the session's record deleted) is
    refused by b on its next request."""
    from goldlabel.services.sessions import SESSION_COOKIE, SessionSigner, start_session

    annotator = factory.make_user()
    project = factory.make_project(annotators=[annotator])
    factory.add_items(project, 5)
    a, b = processes
    signer = SessionSigner(settings.secret_key)
    cookie, session = signer.issue(annotator.id)
    start_session(a.ctx, session)  # as POST /login records it

    def browser(p: Process) -> httpx.Client:
        return httpx.Client(transport=p.transport, base_url="http://goldlabel.test",
                            headers={"Cookie": f"{SESSION_COOKIE}={cookie}",
                                     "X-CSRF-Token": signer.csrf_token(session.nonce)})

    in_a, in_b = browser(a), browser(b)
    assert lease(in_a, project["id"]).status_code == 200 and lease(in_b, project["id"]).status_code == 200
    assert in_a.post("/logout").status_code in (200, 303)
    assert lease(in_b, project["id"]).status_code == 401


# --------------------------------------------------------------------------- real processes


@pytest.fixture
def servers(settings, tmp_path):
    """Two ``goldlabel serve`` processes on the test's database, started side by side."""
    env = {"GOLDLABEL_MEDIA_DIR": str(tmp_path / "media"), "GOLDLABEL_TOKEN_CACHE_S": str(LONG_CACHE_S)}
    started = start_all([LiveServer(settings.database_url, tmp_path, env=env, secret_key=settings.secret_key)
                         for _ in range(2)])
    try:
        yield started
    finally:
        stop_all(started)


@pytest.mark.slow
def test_two_server_processes_see_a_revocation_and_a_suspension_at_once(factory, servers):
    revoked, suspended = factory.make_user(), factory.make_user()
    project = factory.make_project(annotators=[revoked, suspended])
    factory.add_items(project, 10)
    a, b = servers
    admin = a.client(factory.token_for(factory.make_user("admin")))
    in_b = {u.id: b.client(factory.token_for(u)) for u in (revoked, suspended)}
    leases = {}
    for user_id, client in in_b.items():
        for _ in range(2):  # the second lease is served from b's cache
            res = lease(client, project["id"])
            assert res.status_code == 200, res.text
        leases[user_id] = res.json()["token"]

    token_id = admin.get(f"/api/v1/users/{revoked.id}/tokens").json()[0]["id"]
    assert admin.delete(f"/api/v1/users/{revoked.id}/tokens/{token_id}").status_code == 204
    assert admin.patch(f"/api/v1/users/{suspended.id}", json={"is_active": False}).status_code == 200

    for user_id, client in in_b.items():
        res = client.post(f"/api/v1/projects/{project['id']}/answers",
                          json={"lease_token": leases[user_id], "value": {"sentiment": "positive"}})
        assert res.status_code == 401, res.text
        assert lease(client, project["id"]).status_code == 401
    assert count_answers(factory.ctx) == 0
