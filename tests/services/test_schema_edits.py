"""Label schema edits through the API on both backends: an edit that would invalidate stored
answers, gold answers or predictions is refused with 409 and the counts; additive edits make a
new schema version, and every answer records the version it was given under."""

from __future__ import annotations

import copy

import sqlalchemy as sa

from goldlabel.storage.engine import read_tx
from goldlabel.storage.tables import answers

API = "/api/v1/projects"
SCHEMA = {"questions": [
    {"name": "sentiment", "kind": "choice", "labels": ["pos", "neg", "neu"]},
    {"name": "fluency", "kind": "rating", "min": 1, "max": 5, "required": False},
]}


def with_questions(*questions) -> dict:
    return {"questions": list(questions)}


def sentiment(labels) -> dict:
    return {"name": "sentiment", "kind": "choice", "labels": labels}


FLUENCY = SCHEMA["questions"][1]


def answer_next(factory, annotator, pid: int, value: dict) -> dict:
    api = factory.api_as(annotator)
    lease = api.post(f"{API}/{pid}/next")
    assert lease.status_code == 200, lease.text
    res = api.post(f"{API}/{pid}/answers", json={"lease_token": lease.json()["token"], "value": value})
    assert res.status_code == 201, res.text
    return res.json()


def make_labeled(factory):
    """Answers use neu three times (once on an item with a neu prediction) and fluency 5 once;
    one gold answer uses neu."""
    a1, a2 = factory.make_user(), factory.make_user()
    project = factory.make_project(schema=SCHEMA, annotators=[a1, a2], overlap_min=2, overlap_max=2)
    pid = project["id"]
    rows = [{"external_id": f"n{i}", "data": {"text": f"item {i}"}} for i in range(3)]
    rows[0]["predictions"] = [{"model_version": "m1", "value": {"sentiment": "neu"}, "score": 0.9}]
    rows.append({"external_id": "g0", "data": {"text": "gold"}, "gold": {"sentiment": "neu"}})
    manager = factory.api_as(project["manager"])
    assert manager.post(f"{API}/{pid}/items", json=rows).status_code == 201
    for value in ({"sentiment": "neu"}, {"sentiment": "neu", "fluency": 5}, {"sentiment": "pos"}):
        answer_next(factory, a1, pid, value)
    answer_next(factory, a2, pid, {"sentiment": "neu"})
    return project, manager, (a1, a2)


def test_removing_a_label_in_use_is_refused_with_the_counts(factory):
    project, manager, _ = make_labeled(factory)
    pid = project["id"]
    res = manager.patch(f"{API}/{pid}", json={"label_schema": with_questions(sentiment(["pos", "neg"]), FLUENCY)})
    assert res.status_code == 409, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert body["code"] == "schema_in_use"
    assert body["conflicts"] == [{"question": "sentiment", "reason": "label_removed", "label": "neu",
                                  "answers": 3, "gold": 1, "predictions": 1}]
    assert "label 'neu' of 'sentiment' removed: used by 3 answers, 1 gold, 1 predictions" in body["detail"]
    # Nothing changed: same schema, same version.
    now = manager.get(f"{API}/{pid}").json()
    assert now["label_schema"]["questions"][0]["labels"] == ["pos", "neg", "neu"] and now["schema_version"] == 1


def test_renaming_a_label_or_removing_a_question_in_use_is_refused(factory):
    project, manager, _ = make_labeled(factory)
    pid = project["id"]
    renamed = manager.patch(f"{API}/{pid}", json={
        "label_schema": with_questions(sentiment(["pos", "neg", "neutral"]), FLUENCY)})
    assert renamed.status_code == 409
    assert [(c["label"], c["answers"]) for c in renamed.json()["conflicts"]] == [("neu", 3)]
    dropped = manager.patch(f"{API}/{pid}", json={"label_schema": with_questions(sentiment(["pos", "neg", "neu"]))})
    assert dropped.status_code == 409
    assert dropped.json()["conflicts"] == [{"question": "fluency", "reason": "question_removed",
                                            "answers": 1, "gold": 0, "predictions": 0}]
    narrowed = manager.patch(f"{API}/{pid}", json={
        "label_schema": with_questions(sentiment(["pos", "neg", "neu"]), {**FLUENCY, "max": 4})})
    assert narrowed.status_code == 409
    assert narrowed.json()["conflicts"] == [{"question": "fluency", "reason": "invalid", "code": "out_of_range",
                                             "answers": 1, "gold": 0, "predictions": 0}]
    kind = manager.patch(f"{API}/{pid}", json={"label_schema": with_questions(
        {"name": "sentiment", "kind": "multi_choice", "labels": ["pos", "neg", "neu"]}, FLUENCY)})
    assert kind.status_code == 409 and kind.json()["conflicts"][0]["reason"] == "kind_changed"


def test_additive_edits_make_a_new_version_and_answers_keep_theirs(factory, ctx):
    project, manager, (a1, a2) = make_labeled(factory)
    pid = project["id"]
    before = manager.get(f"{API}/{pid}").json()
    # The same schema again is no edit.
    same = manager.patch(f"{API}/{pid}", json={"label_schema": copy.deepcopy(SCHEMA)})
    assert same.status_code == 200 and same.json()["schema_version"] == 1
    # Add a label and a question after answers exist, and retitle a question.
    grown = with_questions(sentiment(["pos", "neg", "neu", "mixed"]), {**FLUENCY, "title": "Fluency (1-5)"},
                           {"name": "topic", "kind": "text", "required": False})
    res = manager.patch(f"{API}/{pid}", json={"label_schema": grown})
    assert res.status_code == 200, res.text
    assert res.json()["schema_version"] == 2 and res.json()["updated_at"] >= before["updated_at"]
    answer_next(factory, a2, pid, {"sentiment": "mixed", "topic": "weather"})
    with read_tx(ctx.engine) as conn:
        versions = [v for (v,) in conn.execute(sa.select(answers.c.schema_version)
                                               .where(answers.c.project_id == pid).order_by(answers.c.id))]
    assert versions == [1, 1, 1, 1, 2]
    listed = manager.get(f"{API}/{pid}/schema-versions").json()
    assert [(v["version"], v["answers"]) for v in listed] == [(1, 4), (2, 1)]
    assert listed[0]["label_schema"]["questions"][0]["labels"] == ["pos", "neg", "neu"]
    assert listed[1]["label_schema"]["questions"][2]["name"] == "topic"
    assert listed[1]["created_by"] == project["manager"].id
    # Removing a label no stored value uses is a new version too.
    unused = with_questions(sentiment(["pos", "neu", "mixed"]), FLUENCY, grown["questions"][2])
    res = manager.patch(f"{API}/{pid}", json={"label_schema": unused})
    assert res.status_code == 200, res.text
    assert res.json()["schema_version"] == 3
    # Annotators may not read the versions (reviewers and managers may).
    assert factory.api_as(a1).get(f"{API}/{pid}/schema-versions").status_code == 403


def test_every_submit_path_records_the_schema_version(factory, ctx, monkeypatch):
    """A choice-only project takes PostgreSQL's merged submit (one statement); the version
    comes from the project row that statement checked. The generic path gets it from the
    project it validated against."""
    from goldlabel.services.queue import merged_submit

    a1 = factory.make_user()
    project = factory.make_project(schema=with_questions(sentiment(["pos", "neg"])), annotators=[a1],
                                   overlap_min=1, overlap_max=1)
    pid = project["id"]
    factory.add_items(project, 3)
    manager = factory.api_as(project["manager"])
    answer_next(factory, a1, pid, {"sentiment": "pos"})
    res = manager.patch(f"{API}/{pid}", json={"label_schema": with_questions(sentiment(["pos", "neg", "neu"]))})
    assert res.status_code == 200 and res.json()["schema_version"] == 2
    merged = []
    original = merged_submit._submit_written
    monkeypatch.setattr(merged_submit, "_submit_written",
                        lambda ctx, plan, rows: merged.append(1) or original(ctx, plan, rows))
    answer_next(factory, a1, pid, {"sentiment": "neu"})
    assert merged == ([1] if ctx.engine.dialect.name == "postgresql" else [])
    monkeypatch.setattr(merged_submit, "merged_kinds", lambda schema: False)  # the generic path
    answer_next(factory, a1, pid, {"sentiment": "neg"})
    with read_tx(ctx.engine) as conn:
        versions = [v for (v,) in conn.execute(sa.select(answers.c.schema_version)
                                               .where(answers.c.project_id == pid).order_by(answers.c.id))]
    assert versions == [1, 2, 2]
