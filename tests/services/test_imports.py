"""File imports (JSONL, CSV, Parquet) through the service and the upload API, on both backends."""

from __future__ import annotations

import io

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from goldlabel.app import create_app
from goldlabel.domain.errors import GoldlabelError
from goldlabel.services.context import Context
from goldlabel.services.exports import export_project
from goldlabel.services.import_rows import ImportFailed
from goldlabel.services.imports import import_file
from goldlabel.storage.tables import events, gold_answers, items, predictions


@pytest.fixture
def app(ctx):
    return create_app(context=ctx, migrate=False)


def jsonl_bytes(rows) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def db_items(ctx, project_id) -> list[dict]:
    with ctx.engine.connect() as conn:
        q = sa.select(items).where(items.c.project_id == project_id).order_by(items.c.id)
        return [dict(r) for r in conn.execute(q).mappings()]


def sample_rows(n, *, start=0):
    return [{"external_id": f"x{i}", "data": {"text": f"item {i}"}} for i in range(start, start + n)]


def write_file(tmp_path, fmt, rows):
    path = tmp_path / f"items.{fmt}"
    if fmt == "jsonl":
        path.write_bytes(jsonl_bytes(rows))
    elif fmt == "json":
        path.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    elif fmt == "csv":
        lines = ["external_id,priority,text,meta.source,gold"]
        for r in rows:
            gold = orjson.dumps(r["gold"]).decode().replace('"', '""') if r.get("gold") else ""
            lines.append(f'{r["external_id"]},{r.get("priority", "")},{r["data"]["text"]},'
                         f'{r["meta"]["source"]},"{gold}"')
        path.write_text("\n".join(lines) + "\n")
    else:
        pq.write_table(pa.table({
            "external_id": [r["external_id"] for r in rows],
            "priority": [r.get("priority") for r in rows],
            "data": [r["data"] for r in rows],
            "meta": [r["meta"] for r in rows],
            "gold": [orjson.dumps(r["gold"]).decode() if r.get("gold") else None for r in rows],
        }), path, row_group_size=3)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "json"])
def test_import_file_round_trip(factory, tmp_path, fmt):
    project = factory.make_project()
    rows = [
        {"external_id": f"x{i}", "priority": i % 3, "data": {"text": f"item {i}"}, "meta": {"source": "web"}}
        for i in range(10)
    ]
    rows[4]["gold"] = {"sentiment": "negative"}
    report = import_file(factory.ctx, project["manager"], project["id"], write_file(tmp_path, fmt, rows))
    assert report.to_dict() | {"errors": []} == {
        "ok": True, "format": fmt, "rows": 10, "created": 10, "updated": 0, "skipped": 0, "answers": 0, "errors": [],
        "error_count": 0,
    }
    stored = db_items(factory.ctx, project["id"])
    assert [(i["external_id"], i["data"], i["meta"], i["priority"]) for i in stored] == [
        (r["external_id"], r["data"], r["meta"], r["priority"]) for r in rows
    ]
    assert [i["external_id"] for i in stored if i["is_gold"]] == ["x4"]

    # Export, then import the export into a fresh project: the same items come back.
    out = io.BytesIO()
    assert export_project(factory.ctx, None, project["id"], fmt, out, include_gold=True) == 10
    other = factory.make_project()
    again = import_file(factory.ctx, None, other["id"], io.BytesIO(out.getvalue()), fmt=fmt)
    assert again.ok and again.created == 10
    copied = db_items(factory.ctx, other["id"])
    assert [(i["external_id"], i["data"], i["meta"], i["priority"], i["is_gold"]) for i in copied] == [
        (i["external_id"], i["data"], i["meta"], i["priority"], i["is_gold"]) for i in stored
    ]


def test_one_bad_line_imports_nothing_and_reports_it(factory):
    project = factory.make_project()
    payload = jsonl_bytes(sample_rows(3)) + b'{"external_id": "x9", "data": {\n' + jsonl_bytes(sample_rows(2, start=3))
    with pytest.raises(ImportFailed) as exc:
        import_file(factory.ctx, project["manager"], project["id"], io.BytesIO(payload), fmt="jsonl")
    report = exc.value.extra["report"]
    assert report["ok"] is False and report["rows"] == 6 and report["created"] == 0
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(4, "bad_json")]
    assert db_items(factory.ctx, project["id"]) == []


def test_validation_errors_report_line_and_field(factory):
    project = factory.make_project()
    rows = sample_rows(2) + [{"external_id": "", "data": {}}, {"external_id": "ok", "data": "text"},
                             {"external_id": "x0", "data": {}}]
    with pytest.raises(ImportFailed) as exc:
        import_file(factory.ctx, None, project["id"], io.BytesIO(jsonl_bytes(rows)), fmt="jsonl")
    errors = exc.value.extra["report"]["errors"]
    assert [(e["line"], e["loc"], e["code"]) for e in errors] == [
        (3, ["external_id"], "bad_external_id"),
        (4, ["data"], "bad_data"),
        (5, ["external_id"], "duplicate_external_id"),
    ]


def test_partial_import_keeps_the_valid_rows(factory):
    project = factory.make_project()
    payload = jsonl_bytes(sample_rows(3)) + b"not json\n" + jsonl_bytes(sample_rows(2, start=3))
    report = import_file(factory.ctx, None, project["id"], io.BytesIO(payload), fmt="jsonl", partial=True)
    assert (report.rows, report.created, report.error_count) == (6, 5, 1)
    assert report.errors[0]["line"] == 4
    assert len(db_items(factory.ctx, project["id"])) == 5


def latin1_csv(bad_line: int, last_line: int) -> bytes:
    """A CSV that is UTF-8 but for one Latin-1 byte (0xe9, "é") on ``bad_line``."""
    lines = [b"external_id,text"]
    for n in range(2, last_line + 1):
        text = b"caf\xe9 au lait" if n == bad_line else f"review {n}".encode()
        lines.append(b"x%d,%s" % (n, text))
    return b"\n".join(lines) + b"\n"


def test_a_bad_byte_is_reported_at_its_line_and_column(factory):
    # Issue 12.7: the bad byte on line 61 was reported at line 1 ("cannot read the header"),
    # because the reader decoded 8 KiB ahead.
    project = factory.make_project()
    with pytest.raises(ImportFailed) as exc:
        import_file(factory.ctx, None, project["id"], io.BytesIO(latin1_csv(61, 70)), fmt="csv")
    report = exc.value.extra["report"]
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(61, "bad_encoding")]
    assert report["errors"][0]["message"].startswith("column 8: byte(s) e9 are not UTF-8")
    assert report["rows"] == 69 and db_items(factory.ctx, project["id"]) == []


def test_partial_import_keeps_every_good_row_around_a_bad_byte(factory):
    # Issue 12.7: --partial reported "1 rejected" and imported nothing, not even the 59 rows before.
    project = factory.make_project()
    report = import_file(factory.ctx, None, project["id"], io.BytesIO(latin1_csv(61, 70)), fmt="csv",
                         partial=True)
    assert (report.rows, report.created, report.error_count) == (69, 68, 1)
    assert report.errors[0]["line"] == 61
    stored = [i["external_id"] for i in db_items(factory.ctx, project["id"])]
    assert stored == [f"x{n}" for n in range(2, 71) if n != 61]


@pytest.mark.parametrize(("fmt", "payload"), [
    ("csv", b""), ("csv", b"external_id,text\n"), ("csv", b"\xef\xbb\xbfexternal_id,text\r\n\r\n"),
    ("jsonl", b""), ("jsonl", b"\n  \n"), ("json", b"[]"), ("json", b" \n"),
])
def test_an_empty_file_is_an_error(factory, fmt, payload):
    project = factory.make_project()
    for partial in (False, True):
        with pytest.raises(GoldlabelError) as exc:
            import_file(factory.ctx, None, project["id"], io.BytesIO(payload), fmt=fmt, partial=partial)
        assert exc.value.code == "empty_file" and exc.value.status == 422
    with factory.ctx.engine.connect() as conn:  # nothing was recorded either
        imported = sa.select(sa.func.count()).where(events.c.kind == "import.completed")
        assert conn.execute(imported).scalar() == 0


def test_json_array_file_reports_items_at_their_lines(factory):
    project = factory.make_project()
    payload = b'[\n  {"external_id": "a", "data": {"text": "x"}},\n  {"external_id": "b", "data": 3},\n' \
              b'  {"external_id": "c", "data": {}}\n  {"external_id": "d", "data": {}}\n]\n'
    report = import_file(factory.ctx, None, project["id"], io.BytesIO(payload), filename="tasks.json",
                         partial=True)
    assert report.format == "json" and (report.created, report.error_count) == (2, 2)
    assert [(e["line"], e["code"]) for e in report.errors] == [(3, "bad_data"), (5, "bad_json")]
    assert report.errors[1]["message"].startswith("column 3: expected ',' or ']' after an item")


def test_reimport_skips_or_updates_never_duplicates(factory):
    project = factory.make_project()
    pid = project["id"]
    import_file(factory.ctx, None, pid, io.BytesIO(jsonl_bytes(sample_rows(5))), fmt="jsonl")
    skip = import_file(factory.ctx, None, pid, io.BytesIO(jsonl_bytes(sample_rows(7))), fmt="jsonl")
    assert (skip.created, skip.skipped, skip.updated) == (2, 5, 0)
    changed = [{"external_id": f"x{i}", "data": {"text": "new"}, "priority": 5} for i in range(3)]
    update = import_file(factory.ctx, None, pid, io.BytesIO(jsonl_bytes(changed)), fmt="jsonl", on_conflict="update")
    assert (update.created, update.skipped, update.updated) == (0, 0, 3)
    stored = db_items(factory.ctx, pid)
    assert len(stored) == 7 and len({i["external_id"] for i in stored}) == 7
    assert [(i["data"]["text"], i["priority"]) for i in stored[:4]] == [("new", 5)] * 3 + [("item 3", 0)]


def test_gold_and_predictions_import(factory):
    project = factory.make_project()
    rows = [
        {"external_id": "g1", "data": {"text": "a"}, "gold": {"sentiment": "positive"}},
        {"external_id": "p1", "data": {"text": "b"},
         "predictions": [{"value": {"sentiment": "negative"}, "score": 0.9, "model_version": "m1"}]},
    ]
    report = import_file(factory.ctx, None, project["id"], io.BytesIO(jsonl_bytes(rows)), fmt="jsonl")
    assert report.created == 2
    with factory.ctx.engine.connect() as conn:
        gold = conn.execute(sa.select(gold_answers.c.value)).scalars().all()
        preds = conn.execute(sa.select(predictions.c.value, predictions.c.score, predictions.c.model_version)).all()
    assert gold == [{"sentiment": "positive"}]
    assert [tuple(p) for p in preds] == [({"sentiment": "negative"}, 0.9, "m1")]
    stored = {i["external_id"]: i for i in db_items(factory.ctx, project["id"])}
    assert stored["g1"]["is_gold"] and not stored["p1"]["is_gold"]
    # A re-import with update replaces the prediction of the same model version, never duplicates it.
    rows[1]["predictions"][0]["score"] = 0.1
    import_file(factory.ctx, None, project["id"], io.BytesIO(jsonl_bytes(rows)), fmt="jsonl", on_conflict="update")
    with factory.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(predictions.c.score)).scalars().all() == [0.1]


def test_invalid_gold_is_reported(factory):
    project = factory.make_project()
    rows = [{"external_id": "g1", "data": {"text": "a"}, "gold": {"sentiment": "meh"}}]
    with pytest.raises(ImportFailed) as exc:
        import_file(factory.ctx, None, project["id"], io.BytesIO(jsonl_bytes(rows)), fmt="jsonl")
    [error] = exc.value.extra["report"]["errors"]
    assert error["line"] == 1 and error["loc"][0] == "gold"


def test_error_report_is_capped_at_100(factory):
    project = factory.make_project()
    payload = b"{bad\n" * 150
    with pytest.raises(ImportFailed) as exc:
        import_file(factory.ctx, None, project["id"], io.BytesIO(payload), fmt="jsonl")
    report = exc.value.extra["report"]
    assert report["error_count"] == 150 and len(report["errors"]) == 100
    assert report["errors"][-1]["line"] == 100


def test_import_spans_several_batches(factory, monkeypatch, tmp_path):
    ctx = Context(settings=factory.ctx.settings.model_copy(update={"import_batch_size": 7}), engine=factory.ctx.engine)
    project = factory.make_project()
    rows = sample_rows(30)
    rows[12]["gold"] = {"sentiment": "positive"}
    path = tmp_path / "items.ndjson"
    path.write_bytes(jsonl_bytes(rows))
    report = import_file(ctx, None, project["id"], path)
    assert (report.format, report.created) == ("jsonl", 30)
    again = import_file(ctx, None, project["id"], path)
    assert (again.created, again.skipped) == (0, 30)
    assert len(db_items(factory.ctx, project["id"])) == 30


# ---------------------------------------------------------------- API upload


def upload(api, pid, payload, name="items.jsonl", **params):
    return api.post(f"/api/v1/projects/{pid}/imports", params=params, files={"file": (name, payload)})


def test_upload_import(factory):
    project = factory.make_project()
    api = factory.api_as(project["manager"])
    res = upload(api, project["id"], jsonl_bytes(sample_rows(4)))
    assert res.status_code == 201, res.text
    assert res.json()["created"] == 4
    csv = b"external_id,text\nx0,changed\nx9,new\n"
    res = upload(api, project["id"], csv, name="more.csv", on_conflict="update")
    assert res.status_code == 201 and (res.json()["updated"], res.json()["created"]) == (1, 1)
    res = upload(api, project["id"], csv, name="more.txt", format="csv")
    assert res.status_code == 201 and res.json()["skipped"] == 2
    buf = io.BytesIO()
    pq.write_table(pa.table({"external_id": ["p1", "p2"], "data": [{"text": "a"}, {"text": "b"}]}), buf)
    res = upload(api, project["id"], buf.getvalue(), name="items.parquet")
    assert res.status_code == 201, res.text
    assert res.json()["format"] == "parquet" and res.json()["created"] == 2
    res = upload(api, project["id"], b'[{"external_id": "j1", "data": {"text": "a"}}]', name="tasks.json")
    assert res.status_code == 201 and res.json()["format"] == "json" and res.json()["created"] == 1
    # A name that does not tell: the console (and any client) passes the format.
    res = upload(api, project["id"], b'[{"external_id": "j2", "data": {}}]', name="blob", format="json")
    assert res.status_code == 201 and res.json()["created"] == 1
    res = upload(api, project["id"], b"", name="empty.csv")
    assert res.status_code == 422 and res.json()["code"] == "empty_file"


def test_upload_rejected_is_problem_with_report(factory):
    project = factory.make_project()
    api = factory.api_as(project["manager"])
    res = upload(api, project["id"], jsonl_bytes(sample_rows(2)) + b"{nope\n")
    assert res.status_code == 422
    assert res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert body["code"] == "import_failed"
    assert [(e["line"], e["code"]) for e in body["report"]["errors"]] == [(3, "bad_json")]
    assert db_items(factory.ctx, project["id"]) == []
    res = upload(api, project["id"], jsonl_bytes(sample_rows(2)) + b"{nope\n", partial="true")
    assert res.status_code == 201 and res.json()["created"] == 2


def test_upload_needs_a_known_format_and_a_file(factory):
    project = factory.make_project()
    api = factory.api_as(project["manager"])
    res = upload(api, project["id"], b"x", name="items.txt")
    assert res.status_code == 422 and res.json()["code"] == "unknown_format"
    res = api.post(f"/api/v1/projects/{project['id']}/imports", data={"other": "x"})
    assert res.status_code == 422


def test_upload_over_the_size_limit_is_413(factory, settings):
    small = Context.from_settings(settings.model_copy(update={"max_upload_bytes": 1000}))
    try:
        app = create_app(context=small, migrate=False)
        import httpx

        from goldlabel.client.transport import ASGIAppTransport

        project = factory.make_project()
        headers = {"Authorization": f"Bearer {factory.token_for(project['manager'])}"}
        with httpx.Client(transport=ASGIAppTransport(app), base_url="http://t", headers=headers) as api:
            res = upload(api, project["id"], jsonl_bytes(sample_rows(100)))
            assert res.status_code == 413 and res.json()["code"] == "upload_too_large"
            assert upload(api, project["id"], jsonl_bytes(sample_rows(2))).status_code == 201
    finally:
        small.close()


def test_upload_scoping(factory):
    annotator, outsider = factory.make_user("annotator"), factory.make_user("manager")
    project = factory.make_project(annotators=[annotator])
    payload = jsonl_bytes(sample_rows(2))
    assert upload(factory.api_as(annotator), project["id"], payload).status_code == 403
    assert upload(factory.api_as(outsider), project["id"], payload).status_code == 404
    assert upload(factory.api_as(None), project["id"], payload).status_code == 401
    assert db_items(factory.ctx, project["id"]) == []


def test_large_batch_keeps_every_row_and_its_id(factory):
    # More rows than one multi-row INSERT holds, plus a remainder; gold on a row past the first chunk.
    project = factory.make_project()
    rows = sample_rows(237)
    rows[150]["gold"] = {"sentiment": "positive"}
    rows[236]["predictions"] = [{"value": {"sentiment": "negative"}}]
    report = import_file(factory.ctx, None, project["id"], io.BytesIO(jsonl_bytes(rows)), fmt="jsonl")
    assert report.created == 237
    stored = db_items(factory.ctx, project["id"])
    assert [(i["external_id"], i["data"]) for i in stored] == [(r["external_id"], r["data"]) for r in rows]
    assert [i["external_id"] for i in stored if i["is_gold"]] == ["x150"]
    with factory.ctx.engine.connect() as conn:
        [pred_item] = conn.execute(sa.select(predictions.c.item_id)).scalars().all()
    assert pred_item == stored[236]["id"]


def test_duplicates_are_found_across_batches_and_after_errors(factory):
    ctx = Context(settings=factory.ctx.settings.model_copy(update={"import_batch_size": 4}), engine=factory.ctx.engine)
    project = factory.make_project()
    pid = project["id"]
    import_file(ctx, None, pid, io.BytesIO(jsonl_bytes(sample_rows(2, start=100))), fmt="jsonl")
    rows = sample_rows(12)
    rows[1] = {"external_id": "x1", "data": "not an object"}  # an early error: later batches still checked
    rows[6] = {"external_id": "x2", "data": {}}  # repeats a new row of an earlier batch
    rows[8] = {"external_id": "x100", "data": {}}  # a pre-existing item...
    rows[11] = {"external_id": "x100", "data": {}}  # ...twice
    with pytest.raises(ImportFailed) as exc:
        import_file(ctx, None, pid, io.BytesIO(jsonl_bytes(rows)), fmt="jsonl")
    report = exc.value.extra["report"]
    assert [(e["line"], e["code"]) for e in report["errors"]] == [
        (2, "bad_data"), (7, "duplicate_external_id"), (12, "duplicate_external_id"),
    ]
    assert report["created"] == 0
    assert [i["external_id"] for i in db_items(factory.ctx, pid)] == ["x100", "x101"]
    # partial: the first occurrence is kept, the repeats are reported
    report = import_file(ctx, None, pid, io.BytesIO(jsonl_bytes(rows)), fmt="jsonl", partial=True,
                         on_conflict="update")
    assert (report.created, report.updated, report.error_count) == (8, 1, 3)
    assert len(db_items(factory.ctx, pid)) == 10


BOXES_SCHEMA = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["car"]}]}
MEDIA = "/api/v1/projects/1/media/" + "ab" * 32 + ".png"


def test_image_sources_the_workspace_refuses_are_refused_at_import(factory):
    # Before, these imported fine and then showed as "no usable image" in the workspace.
    project = factory.make_project(schema=BOXES_SCHEMA)
    rows = [{"external_id": "ok1", "data": {"image": "https://cdn.example/a.jpg"}},
            {"external_id": "ok2", "data": {"image": MEDIA}},
            {"external_id": "http", "data": {"image": "http://cdn.example/a.jpg"}},
            {"external_id": "js", "data": {"image": "javascript:alert(1)"}},
            {"external_id": "rel", "data": {"image": "/static/a.png"}},
            {"external_id": "proto", "data": {"image": "//evil.example/a.png"}}]
    api = factory.api_as(project["manager"])
    res = upload(api, project["id"], jsonl_bytes(rows))
    assert res.status_code == 422, res.text
    errors = res.json()["report"]["errors"]
    assert [(e["line"], e["loc"], e["code"]) for e in errors] == [
        (3, ["data", "image"], "http_host_not_allowed"),
        (4, ["data", "image"], "unsupported_scheme"),
        (5, ["data", "image"], "bad_media_path"),
        (6, ["data", "image"], "unsupported_scheme"),
    ]
    assert db_items(factory.ctx, project["id"]) == []


def test_http_images_import_from_the_configured_hosts_only(factory, settings):
    hosts = Context.from_settings(settings.model_copy(update={"media_http_hosts": "images.lan"}))
    try:
        project = factory.make_project(schema=BOXES_SCHEMA)
        ok = [{"external_id": "a", "data": {"image": "http://images.lan:8080/a.jpg"}}]
        report = import_file(hosts, None, project["id"], io.BytesIO(jsonl_bytes(ok)), fmt="jsonl")
        assert report.created == 1
        bad = [{"external_id": "b", "data": {"image": "http://other.lan/a.jpg"}}]
        with pytest.raises(ImportFailed) as exc:
            import_file(hosts, None, project["id"], io.BytesIO(jsonl_bytes(bad)), fmt="jsonl")
        assert exc.value.extra["report"]["errors"][0]["code"] == "http_host_not_allowed"
    finally:
        hosts.close()
