"""Revocation across processes (issue 17, item 6): a token revoked, or a user suspended, through
one process stops working in every other within ``settings.token_cache_s`` (0: at once).

Two apps with their own Context on one database stand for two server processes (``--workers 2``):
nothing is shared between them but the database."""

from __future__ import annotations

import time

import httpx
import pytest

from goldlabel.app import create_app
from goldlabel.client.transport import ASGIAppTransport
from goldlabel.services.context import Context


class Process:
    def __init__(self, settings) -> None:
        self.ctx = Context.from_settings(settings)
        self.transport = ASGIAppTransport(create_app(context=self.ctx, migrate=False))

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(transport=self.transport, base_url="http://goldlabel.test",
                            headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.transport.close()
        self.ctx.close()


@pytest.fixture
def processes(settings):
    def start(cache_s: float) -> tuple[Process, Process]:
        tuned = settings.model_copy(update={"token_cache_s": cache_s})
        pair = (Process(tuned), Process(tuned))
        started.extend(pair)
        return pair

    started: list[Process] = []
    yield start
    for p in started:
        p.close()


def lease_status(client: httpx.Client, project_id: int) -> int:
    return client.post(f"/api/v1/projects/{project_id}/next").status_code


def wait_until_refused(client: httpx.Client, project_id: int, limit_s: float) -> float:
    started = time.monotonic()
    while lease_status(client, project_id) != 401:
        assert time.monotonic() - started < limit_s, "still accepted past the bound"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("how", ["revoke", "suspend"])
def test_revocation_reaches_another_process_within_the_bound(factory, processes, how):
    annotator = factory.make_user()
    project = factory.make_project(annotators=[annotator])
    factory.add_items(project, 5)
    admin_token = factory.token_for(factory.make_user("admin"))
    token = factory.token_for(annotator)
    a, b = processes(0.5)
    in_a, in_b = a.client(token), b.client(token)
    assert lease_status(in_a, project["id"]) == 200 and lease_status(in_b, project["id"]) == 200  # cached
    admin = a.client(admin_token)
    if how == "revoke":
        token_id = admin.get(f"/api/v1/users/{annotator.id}/tokens").json()[0]["id"]
        assert admin.delete(f"/api/v1/users/{annotator.id}/tokens/{token_id}").status_code == 204
    else:
        assert admin.patch(f"/api/v1/users/{annotator.id}", json={"is_active": False}).status_code == 200
    assert lease_status(in_a, project["id"]) == 401  # the process that did it: at once
    took = wait_until_refused(in_b, project["id"], limit_s=0.5 + 0.5)  # the other: within the bound
    assert took <= 1.0


def test_no_cache_means_at_once_everywhere(factory, processes):
    annotator = factory.make_user()
    project = factory.make_project(annotators=[annotator])
    factory.add_items(project, 5)
    token = factory.token_for(annotator)
    a, b = processes(0)
    in_b = b.client(token)
    assert lease_status(in_b, project["id"]) == 200
    admin = a.client(factory.token_for(factory.make_user("admin")))
    assert admin.patch(f"/api/v1/users/{annotator.id}", json={"is_active": False}).status_code == 200
    assert lease_status(in_b, project["id"]) == 401


def test_the_default_bound_is_two_seconds(settings):
    assert settings.token_cache_s == 2.0
    ctx = Context.from_settings(settings)
    try:
        assert ctx.token_cache_ttl_s == 2.0
    finally:
        ctx.close()
