"""Bad input gets a 4xx problem+json with a stable code, never a 500 (issue 17, items 7 and 8):
integers past 64 bits, lone surrogates, NUL characters (PostgreSQL refuses them), explicit nulls,
and JSON nested too deep to serve. Each case was a 500 before the fix on at least one backend."""

from __future__ import annotations

import json

import httpx
import pytest

from goldlabel.client.transport import ASGIAppTransport
from goldlabel.domain.json_limits import MAX_DEPTH

HUGE = 2**63
SURROGATE = "a\ud800b"
NUL = "a\x00b"
TEXT_SCHEMA = {"questions": [{"name": "note", "kind": "text"}]}


def raw_json(client: httpx.Client, method: str, url: str, body) -> httpx.Response:
    # json.dumps escapes a lone surrogate as \ud800 (httpx's json= would fail to encode it).
    return client.request(method, url, content=json.dumps(body), headers={"content-type": "application/json"})


def assert_problem(res: httpx.Response, status: int, code: str) -> None:
    assert res.status_code == status, res.text
    assert res.headers["content-type"] == "application/problem+json"
    body = res.json()
    if "report" in body:  # a rejected import: the codes are in its report
        assert body["code"] == "import_failed"
        assert code in [e["code"] for e in body["report"]["errors"]], body
    else:
        assert code == body["code"] or code in [e["code"] for e in body["errors"]], body


def nested(depth: int):
    value: object = "x"
    for i in range(depth - 1):
        value = {"k": value} if i % 2 else [value]
    return {"deep": value}  # `depth` levels with the item's own data object


@pytest.fixture
def setup(factory):
    annotator = factory.make_user()
    project = factory.make_project(schema=TEXT_SCHEMA, annotators=[annotator])
    factory.add_items(project, 1)
    return project, factory.api_as(project["manager"]), factory.api_as(annotator), annotator


def test_ids_and_cursors_past_64_bits(factory, setup):
    project, manager, annotator, _ = setup
    base = f"/api/v1/projects/{project['id']}"
    for path in (f"/api/v1/projects/{HUGE}", f"{base}/items/{HUGE}", f"/api/v1/users/{HUGE}",
                 f"{base}/annotators/{HUGE}", f"/api/v1/projects/{10**40}",
                 # negative, found by the fuzzer (tests/api/test_fuzz.py): a 500 before
                 f"/api/v1/projects/{-HUGE - 1}/export", f"{base}/items/{-(10**23)}"):
        assert_problem(manager.get(path), 404, "not_found")
    assert_problem(annotator.post(f"/api/v1/projects/{HUGE}/next"), 404, "not_found")
    assert_problem(manager.delete(f"{base}/items/{HUGE}"), 404, "not_found")
    for query in (f"after={HUGE}", f"annotator_id={HUGE}", f"limit=5&after={10**30}", f"after={-HUGE - 1}"):
        assert_problem(manager.get(f"{base}/items?{query}"), 422, "integer_out_of_range")
    lease = annotator.post(f"{base}/next").json()
    res = annotator.post(f"{base}/answers", json={"lease_token": lease["token"], "value": {"note": "ok"},
                                                 "duration_ms": HUGE})
    assert_problem(res, 422, "integer_out_of_range")
    res = manager.put(f"{base}/members", json={"user_id": HUGE, "role": "annotator"})
    assert_problem(res, 422, "integer_out_of_range")


@pytest.mark.parametrize(("bad", "code"), [(SURROGATE, "lone_surrogate"), (NUL, "nul_character")])
def test_unstorable_text_everywhere(factory, setup, bad, code):
    project, manager, annotator, user = setup
    base = f"/api/v1/projects/{project['id']}"
    # Imports: in item data (a value and a key), external_id, meta.
    for row in ({"external_id": "e1", "data": {"text": bad}}, {"external_id": "e2", "data": {bad: 1}},
                {"external_id": bad, "data": {"text": "t"}}, {"external_id": "e3", "data": {}, "meta": {"m": bad}}):
        assert_problem(raw_json(manager, "POST", f"{base}/items", [row]), 422, code)
    # Names.
    res = raw_json(manager, "POST", "/api/v1/projects", {"name": bad, "label_schema": TEXT_SCHEMA})
    assert_problem(res, 422, code)
    assert_problem(raw_json(manager, "PATCH", base, {"description": bad}), 422, code)
    assert_problem(raw_json(annotator, "PATCH", f"/api/v1/users/{user.id}", {"display_name": bad}), 422, code)
    assert_problem(raw_json(annotator, "POST", f"/api/v1/users/{user.id}/tokens", {"name": bad}), 422, code)
    # Answers (the fast lane hands them to the route, which answers 422).
    lease = annotator.post(f"{base}/next").json()
    res = raw_json(annotator, "POST", f"{base}/answers", {"lease_token": lease["token"], "value": {"note": bad}})
    assert_problem(res, 422, code)
    # The lease is still usable: nothing was half-written.
    res = annotator.post(f"{base}/answers", json={"lease_token": lease["token"], "value": {"note": "fine"}})
    assert res.status_code == 201, res.text


def test_nul_in_urls_and_login_form(factory, setup, app):
    project, manager, _, _ = setup
    assert_problem(manager.get(f"/api/v1/projects/{project['id']}/items?question=a%00b"), 422, "nul_character")
    assert_problem(manager.get("/api/v1/users/lookup?username=a%00b"), 422, "nul_character")
    transport = ASGIAppTransport(app)
    with httpx.Client(transport=transport, base_url="http://goldlabel.test") as browser:
        page = browser.get("/login").text
        token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        res = browser.post("/login", data={"username": NUL, "password": "whatever-password", "csrf_token": token})
        assert res.status_code == 401
    transport.close()


def test_explicit_nulls_are_refused(factory, setup):
    project, manager, _, user = setup
    for body in ({"display_name": None}, {"is_active": None}, {"password": None}):
        assert_problem(manager.patch(f"/api/v1/users/{user.id}", json=body), 422, "null_not_allowed")
    # A project update leaves a null field as it is (the console sends empty fields as null).
    res = manager.patch(f"/api/v1/projects/{project['id']}", json={"name": None, "lease_ttl_s": None})
    assert res.status_code == 200 and res.json()["name"] == project["name"]
    assert manager.get(f"/api/v1/users/{user.id}").json()["is_active"] is True


def test_json_nested_too_deep_is_refused_at_import_and_the_rest_serves(factory, setup):
    project, manager, annotator, _ = setup
    base = f"/api/v1/projects/{project['id']}"
    for depth in (MAX_DEPTH + 1, 253, 255, 400):
        res = raw_json(manager, "POST", f"{base}/items", [{"external_id": f"d{depth}", "data": nested(depth)}])
        assert_problem(res, 422, "too_deep")
        line = res.json()["report"]["errors"][0]
        assert line["line"] == 1 and line["loc"][:2] == ["data", "deep"]
    # Partial import keeps the good row and reports the deep one.
    rows = [{"external_id": "ok", "data": nested(MAX_DEPTH)}, {"external_id": "bad", "data": nested(254)}]
    res = raw_json(manager, "POST", f"{base}/items?partial=true", rows)
    assert res.status_code == 201 and res.json()["created"] == 1 and res.json()["error_count"] == 1
    # Every item left can be leased and answered (the deep one used to 500 on every lease).
    for _ in range(2):
        lease = annotator.post(f"{base}/next")
        assert lease.status_code == 200, lease.text
        res = annotator.post(f"{base}/answers", json={"lease_token": lease.json()["token"], "value": {"note": "x"}})
        assert res.status_code == 201, res.text
    # Answers and gold are bounded too.
    lease = annotator.post(f"{base}/next")
    assert lease.status_code == 204


def test_deep_answer_is_refused(factory, setup):
    project, _, annotator, _ = setup
    base = f"/api/v1/projects/{project['id']}"
    lease = annotator.post(f"{base}/next").json()
    res = raw_json(annotator, "POST", f"{base}/answers", {"lease_token": lease["token"], "value": nested(300)})
    assert_problem(res, 422, "too_deep")
