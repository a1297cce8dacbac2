"""Snapshots: a named export frozen as it was, re-downloaded byte for byte after the project moved on."""

from __future__ import annotations

import hashlib
import io

import orjson
import pytest


def annotate_one(factory, project, annotator, label):
    api = factory.api_as(annotator)
    lease = api.post(f"/api/v1/projects/{project['id']}/next").json()
    res = api.post(f"/api/v1/projects/{project['id']}/answers",
                   json={"lease_token": lease["token"], "value": {"sentiment": label}})
    assert res.status_code == 201, res.text


def test_snapshot_is_immutable_and_scoped(factory):
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann], overlap_min=1)
    factory.add_items(project, 3)
    annotate_one(factory, project, ann, "positive")
    manager = factory.api_as(project["manager"])
    res = manager.post(f"/api/v1/projects/{project['id']}/snapshots", json={"name": "round 1", "format": "jsonl"})
    assert res.status_code == 201, res.text
    snap = res.json()
    assert (snap["item_count"], snap["format"], snap["name"]) == (3, "jsonl", "round 1")
    annotate_one(factory, project, ann, "negative")  # the project moves on
    body = manager.get(f"/api/v1/projects/{project['id']}/snapshots/{snap['id']}/download")
    assert body.status_code == 200
    assert hashlib.sha256(body.content).hexdigest() == snap["sha256"] and len(body.content) == snap["size_bytes"]
    frozen = [orjson.loads(line) for line in body.content.splitlines()]
    assert sum(bool(d["answers"]) for d in frozen) == 1  # as of the snapshot, one item answered
    live = manager.get(f"/api/v1/projects/{project['id']}/export").content.splitlines()
    assert sum(bool(orjson.loads(line)["answers"]) for line in live) == 2
    # Names are unique per project.
    again = manager.post(f"/api/v1/projects/{project['id']}/snapshots", json={"name": "round 1"})
    assert again.status_code == 409 and again.json()["code"] == "snapshot_exists"
    # Annotators cannot list or download; outsiders see nothing.
    assert factory.api_as(ann).get(f"/api/v1/projects/{project['id']}/snapshots").status_code == 403
    outsider = factory.api_as(factory.make_user("manager"))
    assert outsider.get(f"/api/v1/projects/{project['id']}/snapshots/{snap['id']}/download").status_code == 404
    assert [s["id"] for s in manager.get(f"/api/v1/projects/{project['id']}/snapshots").json()] == [snap["id"]]
    events = manager.get(f"/api/v1/projects/{project['id']}/events").json()["items"]
    assert any(e["kind"] == "export.snapshot_created" for e in events)


def test_a_snapshot_with_gold_needs_manage_to_download(factory):
    reviewer = factory.make_user("reviewer")
    project = factory.make_project(annotators=[reviewer], overlap_min=1)
    factory.add_items(project, 2)
    manager = factory.api_as(project["manager"])
    snap = manager.post(f"/api/v1/projects/{project['id']}/snapshots",
                        json={"name": "with gold", "include_gold": True}).json()
    res = factory.api_as(reviewer).get(f"/api/v1/projects/{project['id']}/snapshots/{snap['id']}/download")
    assert res.status_code == 403


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_snapshots_of_binary_formats_round_trip(factory, fmt):
    ann = factory.make_user()
    project = factory.make_project(annotators=[ann], overlap_min=1)
    factory.add_items(project, 2)
    annotate_one(factory, project, ann, "positive")
    manager = factory.api_as(project["manager"])
    snap = manager.post(f"/api/v1/projects/{project['id']}/snapshots", json={"name": fmt, "format": fmt}).json()
    res = manager.get(f"/api/v1/projects/{project['id']}/snapshots/{snap['id']}/download")
    assert res.status_code == 200 and hashlib.sha256(res.content).hexdigest() == snap["sha256"]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(io.BytesIO(res.content)).num_rows == 2
    else:
        assert res.headers["content-type"] == "application/zip"
        assert res.headers["content-disposition"].endswith('-hf.zip"')
