"""Exports (JSONL, CSV, Parquet): content, raw answers, pseudonyms, streaming, scoping."""

from __future__ import annotations

import csv
import io
import re

import orjson
import pyarrow.parquet as pq
import pytest

from goldlabel.app import create_app
from goldlabel.services import exports as export_service
from goldlabel.services.context import Context
from goldlabel.services.exports import export_project, pseudonym, pseudonym_salt


@pytest.fixture
def app(ctx):
    return create_app(context=ctx, migrate=False)


def annotate(factory, project, annotator, label):
    api = factory.api_as(annotator)
    lease = api.post(f"/api/v1/projects/{project['id']}/next")
    assert lease.status_code == 200, lease.text
    res = api.post(f"/api/v1/projects/{project['id']}/answers",
                   json={"lease_token": lease.json()["token"], "value": {"sentiment": label}, "duration_ms": 1200})
    assert res.status_code == 201, res.text
    return factory.item_id(annotator, project["id"], lease.json()["item"]["id"])


@pytest.fixture
def answered(factory):
    """Three items; x0 answered twice (final, positive), x1 once (open), x2 unanswered; x2 is gold."""
    ann1, ann2 = factory.make_user(), factory.make_user()
    project = factory.make_project(annotators=[ann1, ann2], overlap_min=2, overlap_max=2)
    rows = [{"external_id": f"x{i}", "data": {"text": f"item {i}"}, "priority": 3 - i,
             "predictions": [{"value": {"sentiment": "positive"}, "score": 0.8, "model_version": "m1"}]}
            for i in range(3)]
    rows[2]["gold"] = {"sentiment": "negative"}
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert res.status_code == 201, res.text
    annotate(factory, project, ann1, "positive")
    annotate(factory, project, ann2, "positive")
    annotate(factory, project, ann1, "negative")
    return project, ann1, ann2


def item_detail(factory, project, item_id) -> dict:
    res = factory.api_as(project["manager"]).get(f"/api/v1/projects/{project['id']}/items/{item_id}")
    assert res.status_code == 200, res.text
    return res.json()


def export_jsonl(factory, actor, project, **kw) -> list[dict]:
    out = io.BytesIO()
    export_project(factory.ctx, actor, project["id"], "jsonl", out, **kw)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_jsonl_export_content(factory, answered):
    project, ann1, ann2 = answered
    docs = export_jsonl(factory, project["manager"], project)
    assert [d["external_id"] for d in docs] == ["x0", "x1", "x2"]
    x0, x1, x2 = docs
    # Status and consensus are whatever the quality engine decided: the export shows the same.
    for doc in docs:
        detail = item_detail(factory, project, doc["id"])
        assert doc["status"] == detail["status"]
        assert doc["answer"] == {c["question"]: c["value"] for c in detail["consensus"]}
        assert doc["confidence"] == {c["question"]: c["confidence"] for c in detail["consensus"]}
    assert x0["answer"] == {"sentiment": "positive"} and 0 < x0["confidence"]["sentiment"] <= 1
    assert x0["data"] == {"text": "item 0"} and x0["priority"] == 3
    salt = pseudonym_salt(factory.ctx)
    assert [a["annotator"] for a in x0["answers"]] == [pseudonym(ann1.id, salt), pseudonym(ann2.id, salt)]
    assert [a["value"] for a in x0["answers"]] == [{"sentiment": "positive"}] * 2
    assert x0["answers"][0]["duration_ms"] == 1200 and x0["answers"][0]["created_at"] > 0
    assert [a["value"] for a in x1["answers"]] == [{"sentiment": "negative"}]
    assert x2["answers"] == [] and x2["is_gold"] is True
    assert "gold" not in x2 and "predictions" not in x2


def test_pseudonyms_are_stable_salted_and_reveal_nothing(factory, answered):
    project, ann1, _ = answered
    first = export_jsonl(factory, project["manager"], project)[0]["answers"][0]["annotator"]
    assert first == export_jsonl(factory, project["manager"], project)[0]["answers"][0]["annotator"]
    assert re.fullmatch(r"a_[0-9a-f]{16}", first)
    assert ann1.username not in first and first != pseudonym(ann1.id, "another salt")
    # The salt is random per install (issue 17, item 10): the old fixed default does not
    # reverse it, it is 256 bits, and every process of the install (another Context on the same
    # database) uses the same one.
    assert first != pseudonym(ann1.id, "goldlabel")
    salt = pseudonym_salt(factory.ctx)
    assert re.fullmatch(r"[0-9a-f]{64}", salt)
    other = Context.from_settings(factory.ctx.settings)
    try:
        assert pseudonym_salt(other) == salt
    finally:
        other.close()
    # A salt set in the settings wins.
    fixed = Context.from_settings(factory.ctx.settings.model_copy(update={"pseudonym_salt": "chosen"}))
    try:
        assert pseudonym_salt(fixed) == "chosen"
    finally:
        fixed.close()


def test_real_usernames_gold_and_predictions_for_managers(factory, answered):
    project, ann1, ann2 = answered
    docs = export_jsonl(factory, project["manager"], project, pseudonymous=False, include_gold=True,
                        include_predictions=True)
    assert [a["annotator"] for a in docs[0]["answers"]] == [ann1.username, ann2.username]
    assert docs[2]["gold"] == {"sentiment": "negative"} and docs[0]["gold"] is None
    assert docs[1]["predictions"] == [{"model_version": "m1", "value": {"sentiment": "positive"}, "score": 0.8}]


def test_reviewer_exports_pseudonymous_only(factory, answered):
    project, _, _ = answered
    reviewer = factory.make_user("reviewer")
    from goldlabel.services import projects as project_service

    project_service.set_member(factory.ctx, project["manager"], project["id"], reviewer.id, "reviewer")
    assert len(export_jsonl(factory, reviewer, project)) == 3
    for kw in ({"pseudonymous": False}, {"include_gold": True}):
        with pytest.raises(Exception) as exc:
            export_jsonl(factory, reviewer, project, **kw)
        assert getattr(exc.value, "status", None) == 403


def test_status_filter(factory, answered):
    project, _, _ = answered
    docs = export_jsonl(factory, None, project)
    for status in ("open", "final", "needs_review"):
        expected = [d["external_id"] for d in docs if d["status"] == status]
        assert [d["external_id"] for d in export_jsonl(factory, None, project, status=status)] == expected
    assert {d["status"] for d in docs} != {"open"}  # the filter was tested on more than one status


def test_csv_export(factory, answered):
    project, _, _ = answered
    out = io.BytesIO()
    assert export_project(factory.ctx, None, project["id"], "csv", out, include_gold=True) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert list(rows[0]) == ["id", "external_id", "status", "priority", "is_gold", "data", "meta",
                             "answer.sentiment", "confidence.sentiment", "source.sentiment", "reviewer.sentiment",
                             "reviewed_at.sentiment", "answers", "gold"]
    docs = export_jsonl(factory, None, project)
    assert rows[0]["answer.sentiment"] == "positive"
    assert float(rows[0]["confidence.sentiment"]) == docs[0]["confidence"]["sentiment"]
    assert orjson.loads(rows[0]["data"]) == {"text": "item 0"}
    assert len(orjson.loads(rows[0]["answers"])) == 2
    assert rows[2]["answer.sentiment"] == "" and orjson.loads(rows[2]["gold"]) == {"sentiment": "negative"}


def test_parquet_export(factory, answered):
    project, _, _ = answered
    out = io.BytesIO()
    export_project(factory.ctx, None, project["id"], "parquet", out, include_predictions=True)
    table = pq.read_table(io.BytesIO(out.getvalue()))
    assert table.column("external_id").to_pylist() == ["x0", "x1", "x2"]
    assert table.column("answer.sentiment").to_pylist()[0] == '"positive"'
    assert table.column("answer.sentiment").to_pylist()[2] is None
    answers = table.column("answers").to_pylist()
    assert [len(a) for a in answers] == [2, 1, 0]
    assert orjson.loads(answers[0][0]["value"]) == {"sentiment": "positive"}
    assert table.column("predictions").to_pylist()[0][0]["model_version"] == "m1"


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_in_several_batches(factory, monkeypatch, fmt):
    monkeypatch.setattr(export_service, "BATCH_SIZE", 4)
    monkeypatch.setattr(export_service, "CHUNK_BYTES", 10)
    project = factory.make_project()
    factory.add_items(project, 11)
    other = factory.make_project()
    factory.add_items(other, 5)  # interleaved ids of another project never leak in
    factory.add_items(project, 3, start=11)
    job = export_service.prepare_export(factory.ctx, None, project["id"], fmt)
    chunks = list(job.iter_bytes())
    assert len(chunks) > 1
    payload = b"".join(chunks)
    if fmt == "jsonl":
        ids = [orjson.loads(line)["external_id"] for line in payload.splitlines()]
    elif fmt == "csv":
        ids = [r["external_id"] for r in csv.DictReader(io.StringIO(payload.decode()))]
    else:
        ids = pq.read_table(io.BytesIO(payload)).column("external_id").to_pylist()
    assert ids == [f"x{i}" for i in range(14)]


def test_export_api_streams_an_attachment(factory, answered):
    project, _, _ = answered
    api = factory.api_as(project["manager"])
    res = api.get(f"/api/v1/projects/{project['id']}/export", params={"format": "csv", "status": "open"})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/csv")
    assert res.headers["content-disposition"] == f'attachment; filename="project-{project["id"]}.csv"'
    open_ids = [d["external_id"] for d in export_jsonl(factory, None, project, status="open")]
    assert [r["external_id"] for r in csv.DictReader(io.StringIO(res.text))] == open_ids
    res = api.get(f"/api/v1/projects/{project['id']}/export")
    assert res.headers["content-type"].startswith("application/x-ndjson")
    assert len(res.content.splitlines()) == 3
    res = api.get(f"/api/v1/projects/{project['id']}/export", params={"format": "parquet"})
    assert pq.read_table(io.BytesIO(res.content)).num_rows == 3
    res = api.get(f"/api/v1/projects/{project['id']}/export", params={"format": "xml"})
    assert res.status_code == 422


def test_export_api_scoping(factory, answered):
    project, ann1, _ = answered
    outsider = factory.make_user("manager")
    url = f"/api/v1/projects/{project['id']}/export"
    res = factory.api_as(ann1).get(url)
    assert res.status_code == 403 and res.json()["code"] == "forbidden"
    assert factory.api_as(outsider).get(url).status_code == 404
    assert factory.api_as(None).get(url).status_code == 401
