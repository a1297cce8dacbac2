"""A project's ``consensus_method`` is what runs: the default runs the recommended method, a
named method runs that method, and an unknown name is refused with a 422 naming the valid ones
(it used to be accepted and silently replaced) — through the API, on both backends."""

from __future__ import annotations

import pytest

from goldlabel import quality

API = "/api/v1/projects"
SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}


def _answer_all(factory, project, annotators, n_items: int) -> None:
    pid = project["id"]
    for ann in annotators:
        api = factory.api_as(ann)
        for _ in range(n_items):
            lease = api.post(f"{API}/{pid}/next").json()
            label = "positive" if int(lease["item"]["data"]["text"].split()[-1]) % 2 else "negative"
            res = api.post(f"{API}/{pid}/answers", json={"lease_token": lease["token"], "value": {"sentiment": label}})
            assert res.status_code == 201, res.text


@pytest.mark.parametrize(("setting", "expected"), [
    (None, quality.DEFAULT_METHOD),   # the field's default: the recommended method
    ("default", quality.DEFAULT_METHOD),
    ("majority_vote", "mv"),          # used to run the default instead
    ("ds", "ds"),
])
def test_refit_runs_the_configured_method(factory, setting, expected):
    annotators = [factory.make_user() for _ in range(3)]
    settings = {} if setting is None else {"consensus_method": setting}
    project = factory.make_project(annotators=annotators, overlap_min=3, overlap_max=3, settings=settings)
    factory.add_items(project, 6)
    _answer_all(factory, project, annotators, 6)
    res = factory.api_as(project["manager"]).post(f"{API}/{project['id']}/refit")
    assert res.status_code == 200, res.text
    assert res.json()["questions"]["sentiment"]["method"] == expected


def _assert_names_methods(res) -> None:
    assert res.status_code == 422, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    text = res.text
    assert "nonsense" in text
    for name in ("ds", "mv", "ebcc", quality.DEFAULT_METHOD, "majority_vote"):
        assert f"{name}" in text


def test_unknown_method_is_refused_on_create(factory):
    manager = factory.make_user("admin")
    body = {"name": "p", "label_schema": SCHEMA, "settings": {"consensus_method": "nonsense"}}
    res = factory.api_as(manager).post(API, json=body)
    _assert_names_methods(res)
    assert "settings" in str(res.json()["errors"])


def test_unknown_method_is_refused_on_update_and_nothing_changes(factory):
    project = factory.make_project(settings={"consensus_method": "ds"})
    manager = factory.api_as(project["manager"])
    res = manager.patch(f"{API}/{project['id']}", json={"settings": {"consensus_method": "nonsense"}})
    _assert_names_methods(res)
    assert "invalid_settings" in str(res.json()["errors"])
    assert manager.get(f"{API}/{project['id']}").json()["settings"]["consensus_method"] == "ds"
