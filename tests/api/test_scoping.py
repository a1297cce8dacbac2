"""Scoping, generated from the app's route table at run time.

For every /api/v1 route: no credentials -> 401 problem+json. For every route naming an object
(a path parameter): a user outside project A gets 404 for A's objects, filled in with the ids of
real objects (never 200, 403 or 422, which would reveal that they exist); an object of A reached
through another project's path is 404 too. Another user's /users/{user_id}... is 404 for
annotators and reviewers. A new route is covered without touching this file, unless it has a
path parameter or a request body this file cannot fill: then a test fails and says what to add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute

from goldlabel.services.webhooks import route_events

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI < 0.165 lists included routes flat in app.routes

    def iter_route_contexts(routes):
        return iter(routes)


PREFIX = "/api/v1/"
POSITIVE = {"sentiment": "positive"}
PROBLEM = "application/problem+json"
PARAM = re.compile(r"{(\w+)(?::\w+)?}")

# How to fill each path parameter from the world below. A route with a parameter missing here
# fails test_every_path_parameter_can_be_filled: add the id of a real object of project A.
PATH_FILLS = {
    "project_id": lambda w: w.project_a,
    "item_id": lambda w: w.answered_item,
    "item_ref": lambda w: w.answered_item,
    "answer_id": lambda w: w.answer,
    "user_id": lambda w: w.annotator_a.id,
    "annotator_id": lambda w: w.annotator_a.id,
    "token_id": lambda w: w.token,
    "name": lambda w: w.media_name,
    "snapshot_id": lambda w: w.snapshot,
    "webhook_id": lambda w: w.webhook,
    "delivery_id": lambda w: w.delivery,
}

# A VALID request body per route that takes one, so the request reaches the access check instead
# of stopping at input validation (a 422 would prove nothing). Add one for each new route.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/users"): lambda w: {"json": {"username": "newcomer", "role": "annotator"}},
    ("PATCH", "/users/{user_id}"): lambda w: {"json": {"display_name": "renamed"}},
    ("POST", "/users/{user_id}/tokens"): lambda w: {"json": {"name": "stolen"}},
    ("POST", "/users/{user_id}/totp/confirm"): lambda w: {"json": {"code": "123456"}},
    ("POST", "/users/{user_id}/totp/disable"): lambda w: {"json": {"code": "123456"}},
    ("POST", "/projects"): lambda w: {"json": {"name": "p", "label_schema": w.schema}},
    ("PATCH", "/projects/{project_id}"): lambda w: {"json": {"name": "taken over"}},
    ("PUT", "/projects/{project_id}/members"): lambda w: {
        "json": {"user_id": w.outsider.id, "role": "annotator"}
    },
    ("POST", "/projects/{project_id}/items"): lambda w: {
        "json": [{"external_id": "new", "data": {"text": "t"}}]
    },
    ("POST", "/projects/{project_id}/answers"): lambda w: {
        "json": {"lease_token": w.lease, "value": POSITIVE}
    },
    ("POST", "/projects/{project_id}/skip"): lambda w: {"json": {"lease_token": w.lease}},
    ("POST", "/projects/{project_id}/release"): lambda w: {"json": {"lease_token": w.lease}},
    ("PUT", "/projects/{project_id}/my-answers/{answer_id}"): lambda w: {
        "json": {"value": POSITIVE}
    },
    ("PATCH", "/projects/{project_id}/annotators/{annotator_id}"): lambda w: {
        "json": {"status": "suspended"}
    },
    ("POST", "/projects/{project_id}/items/{item_id}/reviews"): lambda w: {
        "json": {"action": "accept"}
    },
    ("POST", "/projects/{project_id}/items/bulk"): lambda w: {
        "json": {"action": "priority", "priority": 1, "filter": {}}
    },
    ("POST", "/projects/{project_id}/items/restore"): lambda w: {"json": {"item_ids": [w.answered_item]}},
    ("POST", "/projects/{project_id}/items/{item_ref}/report"): lambda w: {"json": {"reason": "media_broken"}},
    ("POST", "/projects/{project_id}/webhooks"): lambda w: {
        "json": {"url": "https://hooks.example.com/x", "event_types": ["*"]}
    },
    ("PATCH", "/projects/{project_id}/webhooks/{webhook_id}"): lambda w: {"json": {"is_active": False}},
    ("POST", "/projects/{project_id}/imports"): lambda w: {
        "files": {"file": ("items.jsonl", b'{"external_id": "up", "data": {"text": "t"}}\n')}
    },
    ("POST", "/projects/{project_id}/media"): lambda w: {
        "files": {"file": ("up.png", TINY_PNG)}
    },
    ("POST", "/projects/{project_id}/snapshots"): lambda w: {"json": {"name": "stolen"}},
    ("PATCH", "/projects/{project_id}/models/settings"): lambda w: {"json": {"auto_label": False}},
    ("POST", "/projects/{project_id}/models/audit/review"): lambda w: {"json": {"item_ids": [w.answered_item]}},
}

TINY_PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # the template, e.g. /api/v1/projects/{project_id}/items/{item_id}
    has_body: bool

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path.removeprefix(PREFIX[:-1])

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    @property
    def is_user_route(self) -> bool:
        """/users/{user_id}...: an account, not a project object."""
        return self.path.startswith(PREFIX + "users/{user_id}")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def api_routes(app) -> list[Route]:
    """Every (method, path) under /api/v1 as the app serves it, with whether it takes a body."""
    paths = app.openapi()["paths"]
    out = []
    for r in iter_route_contexts(app.routes):
        if not isinstance(getattr(r, "original_route", r), APIRoute) or not r.path.startswith(
            PREFIX
        ):
            continue
        for method in sorted(r.methods):
            operation = paths.get(r.path, {}).get(method.lower(), {})
            out.append(Route(method, r.path, "requestBody" in operation))
    # Destructive calls last: if one of them leaked, the others still test what they should.
    return sorted(out, key=lambda route: route.method == "DELETE")


@dataclass
class World:
    """Project A with a manager, a reviewer, an annotator, gold and normal items, an answer, a live
    lease and an API token; project B managed by someone outside A; users outside A."""

    schema: dict
    project_a: int
    project_b: int
    manager_a: Any
    reviewer_a: Any
    annotator_a: Any
    manager_b: Any  # manages B, nothing in A
    outsider: Any  # annotator in B, nothing in A
    outsider_reviewer: Any  # reviewer in B, nothing in A
    answered_item: int
    gold_item: int
    answer: int
    lease: str
    token: int
    media_name: str  # a media file of project A (sha256.ext)
    snapshot: int  # a snapshot of project A
    webhook: int
    delivery: int

    def fill(self, route: Route, **overrides: Any) -> str:
        values = {name: overrides.get(name, PATH_FILLS[name](self)) for name in route.params}
        return PARAM.sub(lambda m: str(values[m.group(1)]), route.path)

    def body(self, route: Route) -> dict[str, Any]:
        return BODIES[route.key](self) if route.has_body else {}


@pytest.fixture
def world(factory) -> World:
    def user(role: str):
        return factory.make_user(role, password=None)  # no Argon2: ~1 s per hash here

    manager_a, reviewer_a, annotator_a = user("manager"), user("reviewer"), user("annotator")
    manager_b, outsider, outsider_reviewer = user("manager"), user("annotator"), user("reviewer")
    a = factory.make_project(manager_a, annotators=[reviewer_a, annotator_a], name="A")
    b = factory.make_project(manager_b, annotators=[outsider, outsider_reviewer], name="B")
    factory.add_items(a, 3)
    factory.add_items(b, 1)
    api = factory.api_as(manager_a)
    pid = a["id"]
    gold = {"external_id": "gold", "data": {"text": "known"}, "gold": {"sentiment": "negative"}}
    assert api.post(f"/api/v1/projects/{pid}/items", json=[gold]).status_code == 201

    hook = api.post(f"/api/v1/projects/{pid}/webhooks",
                    json={"url": "https://hooks.example.com/a", "event_types": ["answer.created"]}).json()

    ann = factory.api_as(annotator_a)
    first = ann.post(f"/api/v1/projects/{pid}/next").json()
    submitted = ann.post(
        f"/api/v1/projects/{pid}/answers", json={"lease_token": first["token"], "value": POSITIVE}
    )
    assert submitted.status_code == 201, submitted.text
    live = ann.post(f"/api/v1/projects/{pid}/next")
    assert live.status_code == 200, live.text
    token = ann.post(f"/api/v1/users/{annotator_a.id}/tokens", json={"name": "laptop"}).json()
    route_events(factory.ctx)  # the answer's event, queued for the webhook: a delivery of A
    [delivery] = api.get(f"/api/v1/projects/{pid}/webhooks/{hook['id']}/deliveries").json()
    media = api.post(f"/api/v1/projects/{pid}/media", files={"file": ("a.png", TINY_PNG)})
    assert media.status_code == 201, media.text
    snapshot = api.post(f"/api/v1/projects/{pid}/snapshots", json={"name": "frozen"})
    assert snapshot.status_code == 201, snapshot.text
    items = {
        i["external_id"]: i["id"] for i in api.get(f"/api/v1/projects/{pid}/items").json()["items"]
    }
    return World(
        schema=a["label_schema"],
        project_a=pid,
        project_b=b["id"],
        manager_a=manager_a,
        reviewer_a=reviewer_a,
        annotator_a=annotator_a,
        manager_b=manager_b,
        outsider=outsider,
        outsider_reviewer=outsider_reviewer,
        answered_item=factory.item_id(annotator_a, pid, submitted.json()["answer"]["item_id"]),
        gold_item=items["gold"],
        answer=submitted.json()["answer"]["id"],
        lease=live.json()["token"],
        token=token["id"],
        media_name=next(i["data"]["image"] for i in api.get(f"/api/v1/projects/{pid}/items").json()["items"]
                        if i["external_id"] == "a.png").rsplit("/", 1)[1],
        snapshot=snapshot.json()["id"],
        webhook=hook["id"],
        delivery=delivery["id"],
    )


def is_problem(res, status: int, code: str | None = None) -> bool:
    if res.status_code != status or not res.headers.get("content-type", "").startswith(PROBLEM):
        return False
    body = res.json()
    return body.get("status") == status and (code is None or body.get("code") == code)


def describe(route: Route, res) -> str:
    return f"{route}: {res.status_code} {res.text[:200]}"


# -- the route table is fully known --------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])  # the route table is the same on both
def test_the_route_table_is_not_empty(app):
    routes = api_routes(app)
    assert len(routes) >= 25 and any("{project_id}" in r.path for r in routes)


@pytest.mark.parametrize("backend", ["sqlite"])  # the route table is the same on both
def test_every_path_parameter_can_be_filled(app):
    unknown = sorted(
        {
            f"{name} (in {route})"
            for route in api_routes(app)
            for name in route.params
            if name not in PATH_FILLS
        }
    )
    assert not unknown, (
        f"path parameters tests/api/test_scoping.py cannot fill: {unknown}. Add each to PATH_FILLS with "
        "the id of a real object of project A (create it in the `world` fixture), so the new route "
        "is checked for scoping."
    )


@pytest.mark.parametrize("backend", ["sqlite"])  # the route table is the same on both
def test_every_request_body_is_known(app):
    missing = sorted(str(r) for r in api_routes(app) if r.has_body and r.key not in BODIES)
    assert not missing, (
        f"routes taking a request body that tests/api/test_scoping.py has no valid example for: {missing}. "
        "Add one to BODIES, so the request reaches the access check instead of failing validation."
    )


# -- authentication ------------------------------------------------------------------------


def test_every_route_needs_credentials(factory, app, world):
    anonymous = factory.api_as(None)
    failures = []
    for route in api_routes(app):
        for headers in (
            {},
            {"Authorization": "Bearer gl_not-a-real-token"},
            {"Authorization": "Basic eDp5"},
        ):
            res = anonymous.request(
                route.method, world.fill(route), headers=headers, **world.body(route)
            )
            if (
                not is_problem(res, 401, "unauthorized")
                or res.headers.get("www-authenticate") != "Bearer"
            ):
                failures.append(describe(route, res))
    assert not failures, "routes answering without valid credentials:\n" + "\n".join(failures)


def test_revoked_token_is_refused(factory, world):
    api = factory.api_as(world.annotator_a)
    token = api.post(f"/api/v1/users/{world.annotator_a.id}/tokens", json={}).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert api.get("/api/v1/users/me", headers=headers).status_code == 200
    assert (
        api.delete(f"/api/v1/users/{world.annotator_a.id}/tokens/{token['id']}").status_code == 204
    )
    assert is_problem(api.get("/api/v1/users/me", headers=headers), 401)


# -- project objects -----------------------------------------------------------------------


def object_routes(app) -> list[Route]:
    return [r for r in api_routes(app) if r.params and not r.is_user_route]


def test_outsiders_get_404_for_every_object_of_project_a(factory, app, world):
    failures = []
    for actor in (world.outsider, world.outsider_reviewer, world.manager_b):
        api = factory.api_as(actor)
        for route in object_routes(app):
            res = api.request(route.method, world.fill(route), **world.body(route))
            if not is_problem(res, 404, "not_found"):
                failures.append(f"as {actor.role} outside A: " + describe(route, res))
    assert not failures, "routes revealing project A to users outside it:\n" + "\n".join(failures)
    # Nothing above changed A: its manager still sees everything as before.
    assert (
        factory.api_as(world.manager_a).get(f"/api/v1/projects/{world.project_a}").json()["name"]
        == "A"
    )


def test_objects_of_a_are_404_through_another_project(factory, app, world):
    """B's manager may do anything in B, but not reach A's items, answers or members via B's path."""
    api = factory.api_as(world.manager_b)
    failures = []
    for route in object_routes(app):
        if set(route.params) - {"project_id"}:
            res = api.request(
                route.method, world.fill(route, project_id=world.project_b), **world.body(route)
            )
            if not is_problem(res, 404, "not_found"):
                failures.append(describe(route, res))
    assert not failures, "routes serving project A's objects under project B:\n" + "\n".join(
        failures
    )


def test_the_ids_used_are_real(factory, app, world):
    """The control: A's manager (or the owning annotator) reads every GET route with the same
    ids, so the 404s above come from scoping, not from objects that do not exist."""
    failures = []
    for route in api_routes(app):
        if route.method != "GET" or not route.params:
            continue
        actor = (
            world.annotator_a
            if route.is_user_route or "my-answers" in route.path
            else world.manager_a
        )
        res = factory.api_as(actor).get(world.fill(route))
        if res.status_code != 200:
            failures.append(describe(route, res))
    assert not failures, "\n".join(failures)


# -- accounts ------------------------------------------------------------------------------


def test_other_users_accounts_are_404(factory, app, world):
    user_routes = [r for r in api_routes(app) if r.is_user_route]
    assert user_routes
    failures = []
    for actor in (world.outsider, world.outsider_reviewer, world.reviewer_a, world.manager_b):
        api = factory.api_as(actor)
        for route in user_routes:
            if actor.role == "manager" and "/tokens" not in route.path:
                continue  # managers see and suspend accounts; only tokens stay private to their owner
            res = api.request(route.method, world.fill(route), **world.body(route))
            # A manager sees the account, so "not found" would mislead (issue 12.8): 403.
            expected = (403, "forbidden") if actor.role == "manager" else (404, "not_found")
            if not is_problem(res, *expected):
                failures.append(f"as {actor.role}: " + describe(route, res))
    assert not failures, "routes exposing another user's account:\n" + "\n".join(failures)


# -- gold answers --------------------------------------------------------------------------


def test_gold_answers_are_for_managers_only(factory, world):
    path = f"/api/v1/projects/{world.project_a}/items/{world.gold_item}"
    manager = factory.api_as(world.manager_a).get(path)
    assert manager.status_code == 200 and manager.json()["gold"] == {"sentiment": "negative"}
    reviewer = factory.api_as(world.reviewer_a).get(path)
    assert reviewer.status_code == 200 and reviewer.json()["gold"] is None
    annotator = factory.api_as(world.annotator_a).get(path)
    assert is_problem(annotator, 403) and "negative" not in annotator.text

    # What an annotator is served never tells gold from normal work (Q8).
    lease = (
        factory.api_as(world.annotator_a).post(f"/api/v1/projects/{world.project_a}/next").json()
    )
    assert set(lease) == {"token", "expires_at", "item"}
    assert set(lease["item"]) <= {"id", "data", "predictions"}
    mine = (
        factory.api_as(world.annotator_a)
        .get(f"/api/v1/projects/{world.project_a}/my-answers")
        .json()
    )
    assert mine["items"] and all(
        "gold" not in a and "is_gold" not in a["item"] for a in mine["items"]
    )
