"""Imports from other tools: Label Studio's JSON export; COCO and YOLO boxes as predictions or gold."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import sqlalchemy as sa

from goldlabel.app import create_app
from goldlabel.services.exports import export_project
from goldlabel.services.import_rows import ImportFailed
from goldlabel.services.imports import import_file
from goldlabel.storage.tables import answers, consensus, gold_answers, items, predictions, users

TEXT_SCHEMA = {"questions": [
    {"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]},
    {"name": "entities", "kind": "spans", "labels": ["PER", "ORG"], "required": False},
    {"name": "quality", "kind": "rating", "min": 1, "max": 5, "required": False},
    {"name": "note", "kind": "text", "required": False},
]}
BOX_SCHEMA = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["car", "person"]}]}
PIXEL_SCHEMA = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["car", "person"],
                               "coordinates": "pixel"}]}


@pytest.fixture
def app(ctx):
    return create_app(context=ctx, migrate=False)


def choice(name, label):
    return {"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": [label]}}


def annotation(by, *results, cancelled=False, ground_truth=False, lead_time=3.5):
    return {"id": 100 + by, "completed_by": by, "result": list(results), "was_cancelled": cancelled,
            "ground_truth": ground_truth, "created_at": "2024-05-01T10:00:00.000000Z",
            "updated_at": "2024-05-01T10:00:03.500000Z", "lead_time": lead_time, "task": 1}


def ls_export() -> list[dict]:
    text = "Ada Lovelace met Babbage"
    span = {"from_name": "entities", "to_name": "text", "type": "labels",
            "value": {"start": 0, "end": 12, "text": "Ada Lovelace", "labels": ["PER"]}}
    return [
        {"id": 1, "data": {"text": text}, "meta": {}, "annotations": [
            annotation(1, choice("sentiment", "positive"), span,
                       {"from_name": "quality", "to_name": "text", "type": "rating", "value": {"rating": 4}},
                       {"from_name": "note", "to_name": "text", "type": "textarea",
                        "value": {"text": ["first line", "second"]}}),
            annotation(2, choice("sentiment", "positive")),
            annotation(3, choice("sentiment", "negative"), cancelled=True),
         ], "predictions": [{"model_version": "bert-v2", "score": 0.91,
                             "result": [choice("sentiment", "positive")]}]},
        {"id": 2, "data": {"text": "ACME hired Grace"}, "annotations": [
            annotation(1, choice("sentiment", "negative")),
            annotation(9, choice("sentiment", "negative"), ground_truth=True),
         ], "predictions": []},
        {"id": 3, "data": {"text": "nothing yet"}, "annotations": [], "predictions": []},
    ]


def write_json(tmp_path, name, doc) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return str(path)


def rows_of(ctx, table, where) -> list[dict]:
    with ctx.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(where).order_by(*table.primary_key.columns))
                .mappings()]


def test_labelstudio_export_becomes_items_answers_predictions_and_gold(factory, tmp_path):
    ctx = factory.ctx
    project = factory.make_project(schema=TEXT_SCHEMA)
    path = write_json(tmp_path, "project-1-at-2024.json", ls_export())
    report = import_file(ctx, project["manager"], project["id"], path)
    assert (report.format, report.rows, report.created, report.answers, report.error_count) == (
        "labelstudio", 3, 3, 3, 0)

    stored = {i["external_id"]: i for i in rows_of(ctx, items, items.c.project_id == project["id"])}
    assert sorted(stored) == ["1", "2", "3"]
    assert stored["2"]["is_gold"] and not stored["1"]["is_gold"]
    got = rows_of(ctx, answers, answers.c.project_id == project["id"])
    names = {u["id"]: u for u in rows_of(ctx, users, users.c.id.in_([a["annotator_id"] for a in got]))}
    by = {(stored_id, names[a["annotator_id"]]["username"]): a for a in got
          for stored_id in [next(k for k, v in stored.items() if v["id"] == a["item_id"])]}
    assert sorted(by) == [("1", "ls-1"), ("1", "ls-2"), ("2", "ls-1")]  # the cancelled one is no answer
    assert by[("1", "ls-1")]["value"] == {
        "sentiment": "positive", "entities": [{"start": 0, "end": 12, "label": "PER"}], "quality": 4,
        "note": "first line\nsecond"}
    assert by[("1", "ls-1")]["duration_ms"] == 3500
    assert by[("1", "ls-1")]["created_at"] == 1714557603500
    # Pseudonymous accounts that cannot sign in, and are no project members.
    assert all(u["password_hash"] is None and not u["is_active"] and u["role"] == "annotator"
               for u in names.values())
    assert stored["1"]["answer_count"] == 2
    preds = rows_of(ctx, predictions, predictions.c.project_id == project["id"])
    assert [(p["item_id"], p["model_version"], p["score"], p["value"]) for p in preds] == [
        (stored["1"]["id"], "bert-v2", 0.91, {"sentiment": "positive"})]
    gold = rows_of(ctx, gold_answers, gold_answers.c.project_id == project["id"])
    assert [(g["item_id"], g["value"]) for g in gold] == [(stored["2"]["id"], {"sentiment": "negative"})]
    # The answers count toward consensus as if submitted.
    cons = rows_of(ctx, consensus, consensus.c.item_id == stored["1"]["id"])
    assert {c["question"]: c["value"] for c in cons}["sentiment"] == "positive"

    # Quality sees the imported annotators: ls-1 answered the gold item and was scored on it;
    # a full re-fit runs over the imported answers.
    from goldlabel.services import annotators as annotator_service
    from goldlabel.services import refit as refit_service

    seen = {a["username"]: a for a in annotator_service.list_annotators(ctx, project["manager"], project["id"])}
    assert sorted(seen) == ["ls-1", "ls-2"]
    assert (seen["ls-1"]["n_answers"], seen["ls-1"]["n_gold"], seen["ls-1"]["n_gold_correct"]) == (2, 1, 1)
    refit_service.refit_project(ctx, project["manager"], project["id"])
    cons = rows_of(ctx, consensus, consensus.c.item_id == stored["1"]["id"])
    assert {c["question"]: c["value"] for c in cons}["sentiment"] == "positive"

    # Importing the same export again changes nothing.
    again = import_file(ctx, project["manager"], project["id"], path)
    assert (again.created, again.skipped, again.answers) == (0, 3, 0)
    assert len(rows_of(ctx, answers, answers.c.project_id == project["id"])) == 3


def test_labelstudio_unsupported_types_are_refused_with_their_task(factory, tmp_path):
    ctx = factory.ctx
    project = factory.make_project(schema=TEXT_SCHEMA)
    tasks = ls_export()
    tasks[1]["annotations"][0]["result"].append(
        {"from_name": "mask", "to_name": "image", "type": "brushlabels",
         "value": {"format": "rle", "rle": [1, 2], "brushlabels": ["car"]}})
    tasks[2]["annotations"] = [annotation(4, choice("mood", "happy"))]
    path = write_json(tmp_path, "export.json", tasks)
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, project["manager"], project["id"], path, fmt="labelstudio")
    report = failed.value.extra["report"]
    assert [(e["code"], e["loc"]) for e in report["errors"]] == [
        ("ls_unsupported_type", ["annotations", 0, "result", 1, "type"]),
        ("unknown_question", ["annotations", 0, "result", 0, "from_name"]),
    ]
    text = json.dumps(tasks, indent=2).splitlines()
    assert text[report["errors"][0]["line"] - 1].strip() == "{" and report["errors"][0]["line"] > 1
    assert "'brushlabels'" in report["errors"][0]["message"]
    assert rows_of(ctx, items, items.c.project_id == project["id"]) == []
    assert rows_of(ctx, answers, answers.c.project_id == project["id"]) == []

    partial = import_file(ctx, project["manager"], project["id"], path, fmt="labelstudio", partial=True)
    assert (partial.created, partial.error_count, partial.answers) == (1, 2, 2)


def test_labelstudio_rectangles_become_boxes(factory, tmp_path):
    ctx = factory.ctx
    region = {"from_name": "objects", "to_name": "image", "type": "rectanglelabels",
              "original_width": 800, "original_height": 600,
              "value": {"x": 10, "y": 50, "width": 25, "height": 50, "rotation": 0, "rectanglelabels": ["car"]}}
    tasks = [{"id": 7, "data": {"image": "https://example.com/a.jpg"},
              "annotations": [annotation(1, region)], "predictions": [
                  {"model_version": "yolo8", "score": 0.5, "result": [region]}]}]
    path = write_json(tmp_path, "boxes.json", tasks)
    relative = factory.make_project(schema=BOX_SCHEMA)
    import_file(ctx, relative["manager"], relative["id"], path)
    [answer] = rows_of(ctx, answers, answers.c.project_id == relative["id"])
    assert answer["value"] == {"objects": [{"x": 0.1, "y": 0.5, "w": 0.25, "h": 0.5, "label": "car"}]}
    pixel = factory.make_project(schema=PIXEL_SCHEMA)
    import_file(ctx, pixel["manager"], pixel["id"], path)
    [answer] = rows_of(ctx, answers, answers.c.project_id == pixel["id"])
    assert answer["value"] == {"objects": [{"x": 80.0, "y": 300.0, "w": 200.0, "h": 300.0, "label": "car"}]}
    [item] = rows_of(ctx, items, items.c.project_id == pixel["id"])
    assert (item["data"]["width"], item["data"]["height"]) == (800, 600)

    region["value"]["rotation"] = 30
    path = write_json(tmp_path, "rotated.json", tasks)
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, relative["manager"], relative["id"], path, fmt="labelstudio")
    assert {e["code"] for e in failed.value.extra["report"]["errors"]} == {"ls_rotated_box"}


def test_labelstudio_annotator_name_of_a_real_account_is_refused(factory, tmp_path):
    ctx = factory.ctx
    factory.make_user("annotator", username="ls-1")
    project = factory.make_project(schema=TEXT_SCHEMA)
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, project["manager"], project["id"], write_json(tmp_path, "t.json", ls_export()))
    assert {e["code"] for e in failed.value.extra["report"]["errors"]} == {"annotator_name_taken"}
    assert rows_of(ctx, items, items.c.project_id == project["id"]) == []


def _box_items(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        boxes = [{"x": 0.1 * (i % 5), "y": 0.2, "w": 0.25, "h": 0.5, "label": "car"},
                 {"x": 0.5, "y": 0.1 * (i % 3), "w": 0.125, "h": 0.25, "label": "person"}][: 1 + i % 2]
        rows.append({"external_id": f"img/{i:03d}.jpg",
                     "data": {"image": f"https://example.com/{i}.jpg", "width": 640, "height": 480},
                     "gold": {"objects": boxes}})
    return rows


def _gold_by_ext(ctx, project_id) -> dict[str, list]:
    stored = {i["id"]: i["external_id"] for i in rows_of(ctx, items, items.c.project_id == project_id)}
    return {stored[g["item_id"]]: g["value"]["objects"]
            for g in rows_of(ctx, gold_answers, gold_answers.c.project_id == project_id)}


def _approx(boxes):
    return [{k: (round(v, 9) if isinstance(v, float) else v) for k, v in b.items()} for b in boxes]


def test_coco_round_trip_as_gold(factory, tmp_path):
    """Export COCO from goldlabel, check it with pycocotools, import it as gold into a fresh
    project with the same items: the same boxes come back."""
    from pycocotools.coco import COCO

    ctx = factory.ctx
    source = factory.make_project(schema=BOX_SCHEMA)
    rows = _box_items(12)
    factory.api_as(source["manager"]).post(f"/api/v1/projects/{source['id']}/items", json=rows)
    out = io.BytesIO()
    export_project(ctx, None, source["id"], "coco", out, include_gold=True)
    target = factory.make_project(schema=BOX_SCHEMA)
    factory.api_as(target["manager"]).post(f"/api/v1/projects/{target['id']}/items",
                                           json=[{k: r[k] for k in ("external_id", "data")} for r in rows])
    archive = zipfile.ZipFile(out)
    total = 0
    for name in archive.namelist():
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(archive.read(name))
        checked = COCO(str(path))  # pycocotools reads the file
        report = import_file(ctx, target["manager"], target["id"], str(path), target="gold")
        assert report.format == "coco" and report.updated == len(checked.getImgIds())
        total += report.updated
    assert total == 12
    want, got = _gold_by_ext(ctx, source["id"]), _gold_by_ext(ctx, target["id"])
    assert {k: _approx(v) for k, v in got.items()} == {k: _approx(v) for k, v in want.items()}


def test_coco_file_as_predictions_matched_by_file_name(factory, tmp_path):
    from pycocotools.coco import COCO

    ctx = factory.ctx
    project = factory.make_project(schema=PIXEL_SCHEMA)
    factory.api_as(project["manager"]).post(f"/api/v1/projects/{project['id']}/items", json=[
        {"external_id": "scans/a.jpg", "data": {"image": "https://example.com/a.jpg", "width": 100, "height": 50}},
        {"external_id": "scans/b.jpg", "data": {"image": "https://example.com/b.jpg", "width": 100, "height": 50}},
    ])
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
                      {"id": 2, "file_name": "b.jpg", "width": 100, "height": 50}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 5, 20, 10], "area": 200,
                            "iscrowd": 0, "score": 0.8},
                           {"id": 2, "image_id": 1, "category_id": 4, "bbox": [0, 0, 100, 50], "area": 5000,
                            "iscrowd": 0, "score": 0.6}],
           "categories": [{"id": 3, "name": "car"}, {"id": 4, "name": "person"}]}
    path = write_json(tmp_path, "detections.json", doc)
    assert len(COCO(path).getAnnIds()) == 2
    report = import_file(ctx, project["manager"], project["id"], path, model_version="detr-1")
    assert (report.rows, report.updated) == (2, 2)
    preds = {p["item_id"]: p for p in rows_of(ctx, predictions, predictions.c.project_id == project["id"])}
    assert sorted(((p["model_version"], p["score"], p["value"]["objects"]) for p in preds.values()),
                  key=lambda p: len(p[2])) == [
        ("detr-1", None, []),
        ("detr-1", pytest.approx(0.7), [{"x": 10.0, "y": 5.0, "w": 20.0, "h": 10.0, "label": "car"},
                                        {"x": 0.0, "y": 0.0, "w": 100.0, "h": 50.0, "label": "person"}]),
    ]

    doc["images"].append({"id": 3, "file_name": "missing.jpg", "width": 1, "height": 1})
    doc["categories"][1]["name"] = "truck"
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, project["manager"], project["id"], write_json(tmp_path, "bad.json", doc), fmt="coco")
    errors = failed.value.extra["report"]["errors"]
    assert sorted(e["code"] for e in errors) == ["item_not_found", "unknown_label"]
    assert any("image 3 (missing.jpg)" in e["message"] for e in errors)


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (width % 256, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def test_yolo_labels_onto_media_items_in_pixels(factory, tmp_path):
    """YOLO's fractions become pixels with the size Pillow reads from the stored image."""
    from goldlabel.services.media import import_media

    ctx = factory.ctx
    project = factory.make_project(schema=PIXEL_SCHEMA)
    media = tmp_path / "media"
    (media / "cam").mkdir(parents=True)
    (media / "cam" / "one.png").write_bytes(_png(200, 100))
    (media / "cam" / "two.png").write_bytes(_png(64, 32))
    import_media(ctx, None, project["id"], media)
    labels = tmp_path / "yolo"
    (labels / "labels" / "train").mkdir(parents=True)
    (labels / "data.yaml").write_text("path: .\ntrain: images/train\nnames:\n  0: car\n  1: person\n")
    (labels / "labels" / "train" / "one.txt").write_text("0 0.5 0.5 0.5 0.5\n1 0.25 0.25 0.5 0.5\n")
    (labels / "labels" / "train" / "two.txt").write_text("")
    report = import_file(ctx, project["manager"], project["id"], str(labels), fmt="yolo", target="gold")
    assert (report.rows, report.updated, report.error_count) == (2, 2, 0)
    gold = _gold_by_ext(ctx, project["id"])
    assert gold == {"cam/one.png": [{"x": 50.0, "y": 25.0, "w": 100.0, "h": 50.0, "label": "car"},
                                    {"x": 0.0, "y": 0.0, "w": 100.0, "h": 50.0, "label": "person"}],
                    "cam/two.png": []}
    stored = {i["external_id"]: i["data"] for i in rows_of(ctx, items, items.c.project_id == project["id"])}
    assert (stored["cam/one.png"]["width"], stored["cam/one.png"]["height"]) == (200, 100)

    (labels / "labels" / "train" / "two.txt").write_text("0 0.5 0.5 0.5 0.5\n7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, project["manager"], project["id"], str(labels), fmt="yolo")
    [error] = failed.value.extra["report"]["errors"]
    assert (error["code"], error["line"]) == ("unknown_category", 2)
    assert "labels/train/two.txt line 2" in error["message"]


def test_yolo_round_trip_from_a_goldlabel_export(factory, tmp_path):
    ctx = factory.ctx
    source = factory.make_project(schema=BOX_SCHEMA)
    rows = _box_items(6)
    factory.api_as(source["manager"]).post(f"/api/v1/projects/{source['id']}/items", json=rows)
    path = tmp_path / "yolo.zip"
    with path.open("wb") as out:
        export_project(ctx, None, source["id"], "yolo", out, include_gold=True)
    target = factory.make_project(schema=BOX_SCHEMA)
    factory.api_as(target["manager"]).post(f"/api/v1/projects/{target['id']}/items",
                                           json=[{k: r[k] for k in ("external_id", "data")} for r in rows])
    report = import_file(ctx, target["manager"], target["id"], str(path), fmt="yolo", target="gold")
    assert report.updated == 6
    want, got = _gold_by_ext(ctx, source["id"]), _gold_by_ext(ctx, target["id"])
    # YOLO writes 6 decimals.
    assert {k: [{**b, **{c: round(b[c], 5) for c in "xywh"}} for b in v] for k, v in got.items()} == \
        {k: [{**b, **{c: round(b[c], 5) for c in "xywh"}} for b in v] for k, v in want.items()}


def test_cli_names_the_tool_formats_of_the_service():
    from goldlabel.cli import transfer as cli_transfer
    from goldlabel.services.imports import TOOL_FORMATS

    assert tuple(cli_transfer.TOOL_FORMATS) == TOOL_FORMATS


def test_import_route_takes_the_tool_formats(factory, tmp_path):
    project = factory.make_project(schema=TEXT_SCHEMA)
    api = factory.api_as(project["manager"])
    body = json.dumps(ls_export()).encode()
    res = api.post(f"/api/v1/projects/{project['id']}/imports", files={"file": ("export.json", body)})
    assert res.status_code == 201, res.text
    assert (res.json()["format"], res.json()["answers"]) == ("labelstudio", 3)
    res = api.post(f"/api/v1/projects/{project['id']}/imports", params={"format": "labelstudio", "target": "gold"},
                   files={"file": ("export.json", body)})
    assert (res.status_code, res.json()["code"]) == (422, "bad_import_option")
    outsider = factory.make_user("manager")
    res = factory.api_as(outsider).post(f"/api/v1/projects/{project['id']}/imports",
                                        params={"format": "coco", "target": "gold"},
                                        files={"file": ("c.json", b"{}")})
    assert res.status_code == 404


def test_cli_imports_a_labelstudio_export_and_yolo_labels(database_url, tmp_path):
    from click.testing import CliRunner

    from goldlabel.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, ["--database", database_url, *args], catch_exceptions=False)

    config = tmp_path / "config.xml"
    config.write_text("""<View><Text name="text" value="$text"/><Image name="img" value="$image"/>
      <Choices name="sentiment" toName="text"><Choice value="positive"/><Choice value="negative"/></Choices>
      <Labels name="entities" toName="text"><Label value="PER"/><Label value="ORG"/></Labels>
      <Rating name="quality" toName="text"/><TextArea name="note" toName="text"/>
      <RectangleLabels name="objects" toName="img"><Label value="car"/><Label value="person"/></RectangleLabels>
      <KeyPointLabels name="joints" toName="img"><Label value="knee"/></KeyPointLabels></View>""")
    created = run("projects", "create", "--name", "migrated", "--ls-config", str(config))
    assert created.exit_code == 0, created.output
    assert "left out" not in created.stderr  # KeyPointLabels became a keypoints question
    project = created.stdout.strip()
    export = write_json(tmp_path, "project-3-at-2024-05-01.json", ls_export())
    result = run("import", project, export, "-q")
    assert result.exit_code == 0, result.output
    assert "3 row(s): 3 created, 0 updated, 0 skipped, 3 answer(s)" in result.stdout

    labels = tmp_path / "yolo"
    (labels / "labels").mkdir(parents=True)
    (labels / "classes.txt").write_text("car\nperson\n")
    (labels / "labels" / "1.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (labels / "labels" / "404.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    result = run("import", project, str(labels), "--format", "yolo", "--as", "gold")
    assert result.exit_code == 1
    assert "file labels/404.txt: no item of the project has the external_id or file name '404'" in result.stderr
    assert "[item_not_found]" in result.stderr
    result = run("import", project, str(labels), "--format", "yolo", "--as", "gold", "--partial", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["updated"] == 1


def test_yolo_zip_upload_and_a_zip_bomb(factory):
    project = factory.make_project(schema=BOX_SCHEMA)
    api = factory.api_as(project["manager"])
    api.post(f"/api/v1/projects/{project['id']}/items",
             json=[{"external_id": "frames/f1.jpg", "data": {"image": "https://example.com/f1.jpg"}}])
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as archive:
        archive.writestr("data.yaml", "names: [car, person]\n")
        archive.writestr("labels/val/f1.txt", "0 0.5 0.5 0.5 0.5 0.75\n")
    res = api.post(f"/api/v1/projects/{project['id']}/imports", params={"format": "yolo"},
                   files={"file": ("labels.zip", body.getvalue())})
    assert res.status_code == 201, res.text
    [pred] = rows_of(factory.ctx, predictions, predictions.c.project_id == project["id"])
    assert (pred["model_version"], pred["score"]) == ("yolo", 0.75)
    assert pred["value"] == {"objects": [{"x": 0.25, "y": 0.25, "w": 0.5, "h": 0.5, "label": "car"}]}

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.yaml", "names: [car]\n")
        archive.writestr("labels/f1.txt", b"\n" * (65 * 1024 * 1024))
    res = api.post(f"/api/v1/projects/{project['id']}/imports", params={"format": "yolo"},
                   files={"file": ("labels.zip", bomb.getvalue())})
    assert (res.status_code, res.json()["code"]) == (422, "file_too_large")


def test_labelstudio_uploads_are_copied_into_the_media_store(factory, tmp_path):
    ctx = factory.ctx
    project = factory.make_project(schema=BOX_SCHEMA)
    media = tmp_path / "ls-media"
    (media / "upload" / "3").mkdir(parents=True)
    png = _png(40, 20)
    (media / "upload" / "3" / "ab12-cat.png").write_bytes(png)
    box = {"from_name": "objects", "to_name": "image", "type": "rectanglelabels",
           "value": {"x": 10, "y": 10, "width": 50, "height": 50, "rectanglelabels": ["car"]}}
    tasks = [{"id": 1, "data": {"image": "/data/upload/3/ab12-cat.png"}, "annotations": [annotation(2, box)]}]
    path = write_json(tmp_path, "export.json", tasks)
    with pytest.raises(ImportFailed) as failed:  # without the media folder: Label Studio's path is refused
        import_file(ctx, None, project["id"], path)
    assert [e["code"] for e in failed.value.extra["report"]["errors"]] == ["bad_media_path"]
    report = import_file(ctx, None, project["id"], path, media_root=media)
    assert (report.created, report.answers) == (1, 1)
    [item] = rows_of(ctx, items, items.c.project_id == project["id"])
    image = item["data"]["image"]
    assert image.startswith(f"/api/v1/projects/{project['id']}/media/") and image.endswith(".png")
    res = factory.api_as(project["manager"]).get(image)
    assert res.status_code == 200 and res.content == png

    tasks[0]["id"], tasks[0]["data"]["image"] = 2, "/data/upload/../../secret.png"
    (tmp_path / "secret.png").write_bytes(png)
    tasks.append({"id": 3, "data": {"image": "/data/upload/3/gone.png"}})
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, None, project["id"], write_json(tmp_path, "bad.json", tasks), media_root=media)
    assert [e["code"] for e in failed.value.extra["report"]["errors"]] == ["path_escapes_root", "unreadable_file"]
    with pytest.raises(Exception, match="local operator"):
        import_file(ctx, project["manager"], project["id"], path, media_root=media)
