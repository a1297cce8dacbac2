"""COCO and YOLO polygons and keypoints as gold or pre-labels: a goldlabel export imported into a
new project gives the same shapes back; bad shapes are refused with their image, annotation or
line and a stable code, and nothing is imported unless partial was asked."""

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
from goldlabel.storage.tables import gold_answers, items, predictions

SCHEMA = {"questions": [
    {"name": "regions", "kind": "polygons", "labels": ["roof", "road"]},
    {"name": "pose", "kind": "keypoints", "labels": ["person", "cat"], "coordinates": "pixel",
     "skeletons": {"person": {"points": ["nose", "left_wrist", "right_wrist"],
                              "edges": [["nose", "left_wrist"], ["nose", "right_wrist"]]},
                   "cat": {"points": ["head", "tail"], "edges": [["head", "tail"]]}}},
]}
W, H = 640, 480


@pytest.fixture
def app(ctx):
    return create_app(context=ctx, migrate=False)


def _rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        dx = 0.01 * i
        regions = [{"points": [[0.1 + dx, 0.1], [0.5, 0.1], [0.5, 0.4], [0.3 + dx, 0.5], [0.1, 0.4]], "label": "roof"},
                   {"points": [[0.6, 0.6 + dx], [0.9, 0.6], [0.9, 0.9]], "label": "road"}][: 1 + i % 2]
        pose = [{"label": "person", "points": {"nose": {"x": 320 + i, "y": 100, "v": 2},
                                               "right_wrist": {"x": 360, "y": 215 + i, "v": 1}}}]
        if i % 3 == 0:
            pose.append({"label": "cat", "points": {"head": {"x": 100, "y": 400, "v": 2},
                                                    "tail": {"x": 180 + i, "y": 420, "v": 2}}})
        rows.append({"external_id": f"img/{i:03d}.jpg",
                     "data": {"image": f"https://example.com/{i}.jpg", "width": W, "height": H},
                     "gold": {"regions": regions, "pose": pose}})
    return rows


def _gold(ctx, project_id: int, question: str) -> dict[str, list]:
    with ctx.engine.connect() as conn:
        names = dict(conn.execute(sa.select(items.c.id, items.c.external_id)
                                  .where(items.c.project_id == project_id)).all())
        rows = conn.execute(sa.select(gold_answers.c.item_id, gold_answers.c.value)
                            .where(gold_answers.c.project_id == project_id)).all()
    return {names[item_id]: value[question] for item_id, value in rows if question in value}


def _rounded(value, digits: int):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    return value


def _projects(factory, n: int = 9) -> tuple[dict, dict, list[dict]]:
    rows = _rows(n)
    source = factory.make_project(schema=SCHEMA)
    res = factory.api_as(source["manager"]).post(f"/api/v1/projects/{source['id']}/items", json=rows)
    assert res.status_code == 201, res.text
    target = factory.make_project(schema=SCHEMA)
    res = factory.api_as(target["manager"]).post(f"/api/v1/projects/{target['id']}/items",
                                                 json=[{k: r[k] for k in ("external_id", "data")} for r in rows])
    assert res.status_code == 201, res.text
    return source, target, rows


@pytest.mark.parametrize("question", ["regions", "pose"])
def test_coco_polygons_and_keypoints_round_trip_as_gold(factory, tmp_path, question):
    from pycocotools.coco import COCO

    ctx = factory.ctx
    source, target, _ = _projects(factory)
    out = io.BytesIO()
    export_project(ctx, None, source["id"], "coco", out, include_gold=True, question=question)
    archive = zipfile.ZipFile(out)
    updated = 0
    for name in archive.namelist():
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(archive.read(name))
        COCO(str(path))  # pycocotools reads what is imported
        report = import_file(ctx, target["manager"], target["id"], str(path), target="gold", question=question)
        assert report.format == "coco" and report.error_count == 0
        updated += report.updated
    assert updated == 9
    want, got = _gold(ctx, source["id"], question), _gold(ctx, target["id"], question)
    assert _rounded(got, 9) == _rounded(want, 9)


@pytest.mark.parametrize("question", ["regions", "pose"])
def test_yolo_segment_and_pose_round_trip_as_gold(factory, tmp_path, question):
    ctx = factory.ctx
    source, target, _ = _projects(factory)
    path = tmp_path / "yolo.zip"
    with path.open("wb") as out:
        export_project(ctx, None, source["id"], "yolo", out, include_gold=True, question=question)
    report = import_file(ctx, target["manager"], target["id"], str(path), fmt="yolo", target="gold",
                         question=question)
    assert (report.updated, report.error_count) == (9, 0)
    want, got = _gold(ctx, source["id"], question), _gold(ctx, target["id"], question)
    # YOLO writes fractions with 6 decimals: pixels come back within 640 * 5e-7.
    digits = 5 if question == "regions" else 2
    assert _rounded(got, digits) == _rounded(want, digits)


def _coco(annotations: list[dict], categories: list[dict] | None = None) -> dict:
    return {"images": [{"id": 1, "file_name": "000.jpg", "width": W, "height": H},
                       {"id": 2, "file_name": "001.jpg", "width": W, "height": H}],
            "annotations": annotations,
            "categories": categories or [{"id": 1, "name": "roof"}, {"id": 2, "name": "road"}]}


def _write(tmp_path, name: str, doc: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return str(path)


def test_coco_bad_polygons_are_refused_per_annotation(factory, tmp_path):
    ctx = factory.ctx
    _source, target, _ = _projects(factory, 2)
    square = [64, 48, 320, 48, 320, 240, 64, 240]
    doc = _coco([
        {"id": 10, "image_id": 1, "category_id": 1, "segmentation": [square], "score": 0.9},
        {"id": 11, "image_id": 1, "category_id": 2, "segmentation": [[10, 10, 50, 50]]},          # 2 points
        {"id": 12, "image_id": 2, "category_id": 1, "segmentation": [[0, 0, 100, 100, 100, 0, 0, 100]]},  # bow tie
        {"id": 13, "image_id": 2, "category_id": 9, "segmentation": [square]},                    # no category 9
        {"id": 14, "image_id": 2, "category_id": 1, "segmentation": {"counts": "abc", "size": [H, W]}},
        {"id": 15, "image_id": 2, "category_id": 1, "segmentation": [[10, 10, 700, 10, 300, 100]]},  # off the image
    ])
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, target["manager"], target["id"], _write(tmp_path, "bad.json", doc), question="regions")
    errors = failed.value.extra["report"]["errors"]
    assert sorted(e["code"] for e in errors) == [
        "coco_rle_unsupported", "point_out_of_bounds", "self_intersection", "too_few_points", "unknown_category"]
    by_code = {e["code"]: e["message"] for e in errors}
    assert by_code["too_few_points"].startswith("image 1 (000.jpg): annotation 2 (id 11): ")
    assert by_code["self_intersection"].startswith("image 2 (001.jpg): annotation 3 (id 12): ")
    assert by_code["unknown_category"].startswith("annotation 4: category_id 9")
    assert _gold(ctx, target["id"], "regions") == {}  # all or nothing
    with ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(predictions)
                            .where(predictions.c.project_id == target["id"])).scalar() == 0

    # partial: the good image is imported, the bad ones are reported
    report = import_file(ctx, target["manager"], target["id"], _write(tmp_path, "bad.json", doc),
                         question="regions", partial=True, model_version="mask-rcnn")
    assert (report.updated, report.error_count) == (0, 5)  # image 1 holds the 2-point polygon too
    doc["annotations"] = doc["annotations"][:1]
    report = import_file(ctx, target["manager"], target["id"], _write(tmp_path, "good.json", doc),
                         question="regions", model_version="mask-rcnn")
    assert (report.updated, report.error_count) == (2, 0)
    with ctx.engine.connect() as conn:
        preds = conn.execute(sa.select(predictions.c.value, predictions.c.score, predictions.c.model_version)
                             .where(predictions.c.project_id == target["id"])).all()
    values = sorted(preds, key=lambda p: len(p.value["regions"]))
    assert [(p.model_version, p.score) for p in values] == [("mask-rcnn", None), ("mask-rcnn", 0.9)]
    assert values[1].value["regions"] == [{"points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]],
                                           "label": "roof"}]


def test_coco_keypoints_use_the_category_names_and_refuse_points_off_the_image(factory, tmp_path):
    ctx = factory.ctx
    _source, target, _ = _projects(factory, 2)
    # The file's point order differs from the skeleton's: the category's names decide.
    categories = [{"id": 1, "name": "person", "keypoints": ["right_wrist", "nose", "left_wrist"],
                   "skeleton": [[2, 1], [2, 3]]},
                  {"id": 2, "name": "cat", "keypoints": ["head", "tail"], "skeleton": [[1, 2]]}]
    doc = _coco([{"id": 1, "image_id": 1, "category_id": 1, "keypoints": [360, 215, 1, 320, 100, 2, 0, 0, 0]},
                 {"id": 2, "image_id": 2, "category_id": 2, "keypoints": [100, 400, 2, 180, 420, 2]},
                 {"id": 3, "image_id": 2, "category_id": 1, "keypoints": [0, 0, 0, 0, 0, 0, 0, 0, 0],
                  "num_keypoints": 0, "iscrowd": 1}],
                categories)
    report = import_file(ctx, target["manager"], target["id"], _write(tmp_path, "kp.json", doc),
                         question="pose", target="gold")
    assert (report.updated, report.error_count) == (2, 0)
    assert _gold(ctx, target["id"], "pose") == {
        "img/000.jpg": [{"label": "person", "points": {"nose": {"x": 320, "y": 100, "v": 2},
                                                       "right_wrist": {"x": 360, "y": 215, "v": 1}}}],
        "img/001.jpg": [{"label": "cat", "points": {"head": {"x": 100, "y": 400, "v": 2},
                                                    "tail": {"x": 180, "y": 420, "v": 2}}}]}

    doc["annotations"] = [{"id": 7, "image_id": 1, "category_id": 2, "keypoints": [100, 900, 2, 180, 420, 2]},
                          {"id": 8, "image_id": 2, "category_id": 1, "keypoints": [1, 2, 2]}]
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, target["manager"], target["id"], _write(tmp_path, "bad.json", doc), question="pose")
    errors = failed.value.extra["report"]["errors"]
    assert [(e["code"], e["loc"]) for e in errors] == [
        ("keypoint_count_mismatch", ["annotations", 1, "keypoints"]),
        ("keypoint_out_of_bounds", ["keypoints", "pose", 0, "points", "head"])]
    assert errors[1]["message"].startswith("image 1 (000.jpg): annotation 1 (id 7): keypoint 'head' (100, 900)")


def test_yolo_bad_segment_and_pose_lines_name_their_file_and_line(factory, tmp_path):
    ctx = factory.ctx
    _source, target, _ = _projects(factory, 2)
    root = tmp_path / "yolo"
    (root / "labels").mkdir(parents=True)
    (root / "data.yaml").write_text("names: [roof, road]\n")
    (root / "labels" / "000.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n1 0.2 0.2 0.3 0.3\n")
    (root / "labels" / "001.txt").write_text("0 0.1 0.1 0.5 0.1 0.5\n")
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, target["manager"], target["id"], str(root), fmt="yolo", question="regions")
    errors = failed.value.extra["report"]["errors"]
    assert [(e["code"], e["line"]) for e in errors] == [("too_few_points", 2), ("bad_yolo", 1)]
    assert errors[0]["message"].startswith("file labels/000.txt: line 2: a polygon needs at least 3")
    assert "labels/001.txt line 1" in errors[1]["message"]
    assert _gold(ctx, target["id"], "regions") == {}

    (root / "labels" / "000.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n")
    (root / "labels" / "001.txt").write_text("3 0.1 0.1 0.5 0.1 0.5 0.5\n")
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, target["manager"], target["id"], str(root), fmt="yolo", question="regions")
    assert [e["code"] for e in failed.value.extra["report"]["errors"]] == ["unknown_category"]

    # pose without kpt_names: the skeleton's order; out of the image and a short line refused
    (root / "data.yaml").write_text("names: [person, cat]\nkpt_shape: [3, 3]\n")
    (root / "labels" / "000.txt").write_text("0 0.5 0.5 0.2 0.2 0.5 0.25 2 0 0 0 0.55 0.45 1\n")
    (root / "labels" / "001.txt").write_text("1 0.5 0.5 0.2 0.2 0.1 0.8 2 0.3 0.9 2 0 0 0\n")
    report = import_file(ctx, target["manager"], target["id"], str(root), fmt="yolo", question="pose",
                         target="gold")
    assert (report.updated, report.error_count) == (2, 0)
    assert _rounded(_gold(ctx, target["id"], "pose"), 6) == {
        "img/000.jpg": [{"label": "person", "points": {"nose": {"x": 320.0, "y": 120.0, "v": 2},
                                                       "right_wrist": {"x": 352.0, "y": 216.0, "v": 1}}}],
        "img/001.jpg": [{"label": "cat", "points": {"head": {"x": 64.0, "y": 384.0, "v": 2},
                                                    "tail": {"x": 192.0, "y": 432.0, "v": 2}}}]}
    (root / "labels" / "000.txt").write_text("\n0 0.5 0.5 0.2 0.2 0.5 1.5 2 0 0 0 0.55 0.45 1\n")
    (root / "labels" / "001.txt").write_text("1 0.5 0.5 0.2 0.2 0.1 0.8 2\n")
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, target["manager"], target["id"], str(root), fmt="yolo", question="pose")
    errors = failed.value.extra["report"]["errors"]
    assert [(e["code"], e["line"]) for e in errors] == [("keypoint_out_of_bounds", 2), ("bad_yolo", 1)]
    assert errors[0]["message"].startswith("file labels/000.txt: line 2: keypoint 'nose'")


def _ls_task(task_id: int, *regions, ground_truth: bool = True) -> dict:
    return {"id": task_id, "data": {"image": f"https://example.com/{task_id}.jpg"},
            "annotations": [{"id": task_id, "completed_by": 1, "ground_truth": ground_truth, "result": list(regions)}]}


def _ls_prediction(task_id: int, *regions) -> dict:
    """A task with a prediction: a partial answer (some questions only) is fine there."""
    return {"id": task_id, "data": {"image": f"https://example.com/{task_id}.jpg"},
            "predictions": [{"model_version": "sam", "score": 0.5, "result": list(regions)}]}


def _ls_region(kind: str, name: str, value: dict) -> dict:
    return {"from_name": name, "to_name": "img", "type": kind, "original_width": W, "original_height": H,
            "value": value}


def test_labelstudio_polygons_and_keypoints_become_pixel_shapes(factory, tmp_path):
    ctx = factory.ctx
    project = factory.make_project(schema=SCHEMA)
    polygon = _ls_region("polygonlabels", "regions", {"points": [[10, 10], [50, 10], [50, 50]], "closed": True,
                                                      "polygonlabels": ["roof"]})
    nose = _ls_region("keypointlabels", "pose", {"x": 50, "y": 25, "width": 0.6, "keypointlabels": ["nose"]})
    tail = _ls_region("keypointlabels", "pose", {"x": 25, "y": 50, "keypointlabels": ["tail"]})
    report = import_file(ctx, project["manager"], project["id"],
                         _write(tmp_path, "ls.json", [_ls_task(1, polygon, nose, tail)]))
    assert (report.format, report.created, report.error_count) == ("labelstudio", 1, 0)
    assert _gold(ctx, project["id"], "regions") == {
        "1": [{"points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]], "label": "roof"}]}
    assert _gold(ctx, project["id"], "pose") == {
        "1": [{"label": "person", "points": {"nose": {"x": 320.0, "y": 120.0, "v": 2}}},
              {"label": "cat", "points": {"tail": {"x": 160.0, "y": 240.0, "v": 2}}}]}

    bow_tie = _ls_region("polygonlabels", "regions", {"points": [[0, 0], [40, 40], [40, 0], [0, 40]],
                                                      "polygonlabels": ["road"]})
    line = _ls_region("polygonlabels", "regions", {"points": [[0, 0], [40, 40], [40, 0]], "closed": False,
                                                   "polygonlabels": ["road"]})
    tasks = [_ls_prediction(2, bow_tie), _ls_prediction(3, nose, nose), _ls_prediction(4, line),
             _ls_prediction(5, _ls_region("keypointlabels", "pose", {"x": 120, "y": 5, "keypointlabels": ["nose"]})),
             _ls_prediction(6, _ls_region("keypointlabels", "pose", {"x": 1, "y": 5, "keypointlabels": ["paw"]}))]
    with pytest.raises(ImportFailed) as failed:
        import_file(ctx, project["manager"], project["id"], _write(tmp_path, "bad.json", tasks))
    errors = failed.value.extra["report"]["errors"]
    assert [e["code"] for e in errors] == ["self_intersection", "ls_ambiguous_keypoints", "ls_open_polygon",
                                           "keypoint_out_of_bounds", "unknown_keypoint"]
    assert len({e["line"] for e in errors}) == 5  # each names its task's line
    assert set(_gold(ctx, project["id"], "regions")) == {"1"}  # nothing of the bad file


def test_labelstudio_config_with_polygons_and_keypoints_makes_a_schema_its_export_imports_into(factory, tmp_path):
    from goldlabel.formats import labelstudio

    schema, notes = labelstudio.schema_from_config(
        '<View><Image name="img" value="$image"/>'
        '<PolygonLabels name="regions" toName="img"><Label value="roof"/></PolygonLabels>'
        '<KeyPointLabels name="joints" toName="img"><Label value="knee"/><Label value="hip"/></KeyPointLabels>'
        '</View>')
    assert notes == []
    project = factory.make_project(schema=schema)
    polygon = _ls_region("polygonlabels", "regions", {"points": [[10, 10], [50, 10], [50, 50]],
                                                      "polygonlabels": ["roof"]})
    knee = _ls_region("keypointlabels", "joints", {"x": 50, "y": 25, "keypointlabels": ["knee"]})
    report = import_file(factory.ctx, project["manager"], project["id"],
                         _write(tmp_path, "ls.json", [_ls_task(1, polygon, knee, ground_truth=False)]))
    assert (report.created, report.answers, report.error_count) == (1, 1, 0)
