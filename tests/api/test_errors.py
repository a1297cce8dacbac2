"""Every error is RFC 9457 problem+json with a stable ``code``: from the access checks, the
domain, request validation and the router itself."""

from __future__ import annotations

import pytest

PREFIX = "/api/v1"
PROBLEM_TYPE = "https://goldlabel.dev/problems/"
POSITIVE = {"sentiment": "positive"}


def assert_problem(res, status: int, code: str) -> dict:
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert {"type", "title", "status", "detail", "code", "errors"} <= set(body), body
    assert (body["status"], body["code"], body["type"]) == (status, code, PROBLEM_TYPE + code)
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], list)
    return body


@pytest.fixture
def setup(factory):
    annotator = factory.make_user("annotator", password=None)
    project = factory.make_project(
        factory.make_user("manager", password=None), annotators=[annotator]
    )
    factory.add_items(project, 2)
    return project, factory.api_as(project["manager"]), factory.api_as(annotator)


def test_401_unauthenticated(factory):
    res = factory.api_as(None).get(f"{PREFIX}/users/me")
    assert_problem(res, 401, "unauthorized")
    assert res.headers["www-authenticate"] == "Bearer"


def test_403_role_too_low(setup):
    project, _, annotator = setup
    body = assert_problem(
        annotator.get(f"{PREFIX}/projects/{project['id']}/items"), 403, "forbidden"
    )
    assert "review" in body["detail"]


def test_404_object_and_unknown_path(setup):
    project, manager, _ = setup
    assert_problem(manager.get(f"{PREFIX}/projects/{project['id']}/items/999999"), 404, "not_found")
    assert_problem(manager.get(f"{PREFIX}/nothing-here"), 404, "not_found")


def test_405_wrong_method(setup):
    _, manager, _ = setup
    assert_problem(manager.put(f"{PREFIX}/users/me"), 405, "method_not_allowed")


def test_409_conflicts_have_their_own_codes(setup):
    project, manager, annotator = setup
    assert manager.post(f"{PREFIX}/users", json={"username": "dup"}).status_code == 201
    assert_problem(manager.post(f"{PREFIX}/users", json={"username": "dup"}), 409, "username_taken")

    base = f"{PREFIX}/projects/{project['id']}"
    lease = annotator.post(f"{base}/next").json()
    assert annotator.post(f"{base}/skip", json={"lease_token": lease["token"]}).status_code == 204
    res = annotator.post(f"{base}/answers", json={"lease_token": lease["token"], "value": POSITIVE})
    assert_problem(res, 409, "lease_skipped")


def test_422_request_validation_names_the_field(setup):
    _, manager, _ = setup
    body = assert_problem(
        manager.post(f"{PREFIX}/projects", json={"name": ""}), 422, "validation_failed"
    )
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "name") in locs and ("body", "label_schema") in locs
    assert all({"loc", "code", "message"} <= set(e) for e in body["errors"])
    assert_problem(
        manager.post(
            f"{PREFIX}/projects", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "validation_failed",
    )
    assert_problem(manager.get(f"{PREFIX}/projects/not-a-number"), 422, "validation_failed")


def test_422_answer_validation_has_a_path_and_code(setup):
    project, _, annotator = setup
    base = f"{PREFIX}/projects/{project['id']}"
    lease = annotator.post(f"{base}/next").json()
    res = annotator.post(
        f"{base}/answers", json={"lease_token": lease["token"], "value": {"sentiment": "meh"}}
    )
    body = assert_problem(res, 422, "validation_failed")
    [error] = body["errors"]
    assert error["loc"][-1] == "sentiment" and error["code"] and error["message"]


def test_422_rejected_import_carries_its_report(setup):
    project, manager, _ = setup
    rows = [
        {"external_id": "ok", "data": {"text": "t"}},
        {"external_id": "", "data": {"text": "t"}},
    ]
    body = assert_problem(
        manager.post(f"{PREFIX}/projects/{project['id']}/items", json=rows), 422, "import_failed"
    )
    report = body["report"]
    assert (report["ok"], report["created"], report["error_count"]) == (False, 0, 1)
    assert report["errors"][0]["line"] == 2 and report["errors"][0]["loc"] == ["external_id"]
