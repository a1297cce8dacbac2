"""import_file and export: the SDK streams files to and from the real routes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from goldlabel.client import Forbidden, ImportFailed, NotFound, ValidationFailed

POSITIVE = {"sentiment": "positive"}


@pytest.fixture
def transfer_app(app):
    return app


def jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def test_import_file(factory, transfer_app, connect, tmp_path: Path):
    manager = factory.make_user("manager", password=None)
    gl = connect(manager)
    pid = gl.create_project(
        "imports",
        {
            "questions": [
                {"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}
            ]
        },
    ).id

    path = tmp_path / "items.jsonl"
    path.write_bytes(jsonl([{"external_id": f"x{i}", "data": {"text": f"t{i}"}} for i in range(3)]))
    report = gl.import_file(pid, path)
    assert (report.format, report.rows, report.created) == ("jsonl", 3, 0 + 3)
    assert gl.import_file(pid, str(path)).skipped == 3  # idempotent by external_id

    csv_path = tmp_path / "more.csv"
    csv_path.write_text('external_id,data\ny1,"{""text"": ""y""}"\n')
    assert gl.import_file(pid, csv_path).created == 1

    # A stream without a name: say the format.
    stream = io.BytesIO(jsonl([{"external_id": "z1", "data": {"text": "z"}}]))
    assert gl.import_file(pid, stream, format="jsonl").created == 1
    updated = gl.import_file(
        pid,
        io.BytesIO(jsonl([{"external_id": "z1", "data": {"text": "z2"}}])),
        format="ndjson",
        on_conflict="update",
    )
    assert updated.updated == 1

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl([{"external_id": "ok", "data": {"text": "t"}}]) + b"{broken\n")
    with pytest.raises(ImportFailed) as exc:
        gl.import_file(pid, bad)
    report = exc.value.report
    assert report is not None and (report.rows, report.created, report.error_count) == (2, 0, 1)
    assert (report.errors[0]["line"], report.errors[0]["code"]) == (2, "bad_json")
    assert [i.external_id for i in gl.list_items(pid)] == [
        "x0",
        "x1",
        "x2",
        "y1",
        "z1",
    ]  # nothing from bad

    with pytest.raises(ValidationFailed):
        gl.import_file(pid, path, format="xml")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        connect(factory.make_user("manager", password=None)).import_file(pid, path)


def test_export(factory, transfer_app, connect, tmp_path: Path):
    manager, annotator = (
        factory.make_user("manager", password=None),
        factory.make_user(password=None),
    )
    reviewer = factory.make_user("reviewer", password=None)
    project = factory.make_project(manager, annotators=[annotator, reviewer])
    pid = project["id"]
    gl, ann = connect(manager), connect(annotator)
    gl.add_items(pid, [{"external_id": f"x{i}", "data": {"text": f"t{i}"}} for i in range(3)])
    lease = ann.lease_next(pid)
    ann.submit_answer(pid, lease.token, POSITIVE)

    target = tmp_path / "out.jsonl"
    written = gl.export(pid, "jsonl", target)
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert written == target.stat().st_size and len(records) == 3
    assert not (tmp_path / "out.jsonl.part").exists()
    [answered] = [r for r in records if r["answers"]]
    assert answered["answers"][0]["annotator"] != annotator.username  # pseudonymous by default

    named = io.BytesIO()
    gl.export(pid, "jsonl", named, pseudonymous=False)
    [record] = [r for r in map(json.loads, named.getvalue().splitlines()) if r["answers"]]
    assert record["answers"][0]["annotator"] == annotator.username

    parquet = tmp_path / "out.parquet"
    gl.export(pid, "parquet", parquet, status="open")
    assert pq.read_table(parquet).num_rows == sum(r["status"] == "open" for r in records)
    out = io.BytesIO()
    gl.export(pid, "csv", out)
    header, *lines = out.getvalue().decode().splitlines()
    assert "external_id" in header.split(",") and len(lines) == 3

    # Refused exports raise before anything is written; no file, no leftover part.
    refused = tmp_path / "refused.jsonl"
    with pytest.raises(Forbidden):
        connect(reviewer).export(pid, "jsonl", refused, include_gold=True)
    with pytest.raises(Forbidden):
        ann.export(pid, "jsonl", refused)
    assert list(tmp_path.glob("refused*")) == []
