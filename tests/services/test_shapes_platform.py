"""Polygons and keypoints end to end through the API on both databases: import (bad shapes
refused with their code and line), answers, consensus per answer and in the re-fit, and the
COCO (read back by pycocotools) and YOLO segment / pose (data.yaml and label files parsed)
exports."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import yaml

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.domain.splits import split_of
from goldlabel.services.exports import export_project

API = "/api/v1/projects"
SCHEMA = {"questions": [
    {"name": "regions", "kind": "polygons", "labels": ["roof", "road"]},
    {"name": "pose", "kind": "keypoints", "labels": ["person", "cat"], "coordinates": "pixel",
     "skeletons": {"person": {"points": ["nose", "left_wrist", "right_wrist"],
                              "edges": [["nose", "left_wrist"], ["nose", "right_wrist"]]},
                   "cat": {"points": ["head", "tail"], "edges": [["head", "tail"]]}}},
]}
W, H = 640, 480
ROOF = {"points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.4], [0.3, 0.5], [0.1, 0.4]], "label": "roof"}
ROAD = {"points": [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9]], "label": "road"}
PERSON = {"label": "person", "points": {"nose": {"x": 320, "y": 100, "v": 2},
                                        "left_wrist": {"x": 280, "y": 220, "v": 1},
                                        "right_wrist": {"x": 360, "y": 215, "v": 2}}}
CAT = {"label": "cat", "points": {"head": {"x": 100, "y": 400, "v": 2}, "tail": {"x": 180, "y": 420, "v": 2}}}
VALUE = {"regions": [ROOF, ROAD], "pose": [PERSON, CAT]}


def data(i: int) -> dict:
    return {"image": f"https://example.org/{i}.jpg", "width": W, "height": H}


def answer(factory, annotator, pid: int, value: dict) -> dict:
    api = factory.api_as(annotator)
    lease = api.post(f"{API}/{pid}/next")
    assert lease.status_code == 200, lease.text
    res = api.post(f"{API}/{pid}/answers", json={"lease_token": lease.json()["token"], "value": value})
    assert res.status_code == 201, res.text
    return res.json()


def export_zip(factory, project, fmt: str, question: str) -> zipfile.ZipFile:
    out = io.BytesIO()
    export_project(factory.ctx, None, project["id"], fmt, out, question=question)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


def test_bad_shapes_are_refused_at_import_with_their_code(factory):
    project = factory.make_project(schema=SCHEMA)
    bow_tie = {"points": [[0.1, 0.1], [0.4, 0.4], [0.4, 0.1], [0.1, 0.4]], "label": "roof"}
    rows = [{"external_id": "ok", "data": data(0)},
            {"external_id": "bad", "data": data(1),
             "gold": {"regions": [bow_tie], "pose": [{"label": "cat", "points": {"head": {"x": 700, "y": 10},
                                                                                  "paw": {"x": 1, "y": 1}}}]}}]
    res = factory.api_as(project["manager"]).post(f"{API}/{project['id']}/items", json=rows)
    assert res.status_code == 422, res.text
    report = res.json()["report"]
    assert [(e["line"], e["code"], e["loc"]) for e in report["errors"]] == [
        (2, "self_intersection", ["gold", "regions", 0, "points"]),
        (2, "keypoint_out_of_bounds", ["gold", "pose", 0, "points", "head"]),
        (2, "unknown_keypoint", ["gold", "pose", 0, "points", "paw"])]
    assert factory.api_as(project["manager"]).get(f"{API}/{project['id']}/items").json()["items"] == []


def test_shapes_answer_consensus_refit_and_exports(factory, tmp_path):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    annotators = [factory.make_user() for _ in range(4)]
    project = factory.make_project(schema=SCHEMA, annotators=annotators, overlap_min=1, overlap_max=4)
    pid = project["id"]
    manager = factory.api_as(project["manager"])
    res = manager.post(f"{API}/{pid}/items", json=[{"external_id": "img/0.jpg", "data": data(0)}])
    assert res.status_code == 201, res.text
    schema = LabelSchema.parse(SCHEMA)
    expected = schema.validate_answer(VALUE, data(0))
    statuses = [answer(factory, a, pid, VALUE)["item_status"] for a in annotators]
    assert statuses == ["open", "open", "open", "final"]  # 0.93 after three, 0.97 after four
    item_id = manager.get(f"{API}/{pid}/items").json()["items"][0]["id"]
    rows = {r["question"]: r for r in manager.get(f"{API}/{pid}/items/{item_id}").json()["consensus"]}
    for name in ("regions", "pose"):
        assert rows[name]["value"] == expected[name], name
        assert rows[name]["method"] == "posterior" and 0.95 <= rows[name]["confidence"] <= 1
        assert len(rows[name]["contributions"]) == 4

    res = manager.post(f"{API}/{pid}/refit")
    assert res.status_code == 200, res.text
    summary = res.json()["questions"]
    assert (summary["regions"]["method"], summary["pose"]["method"]) == ("polygon_ds", "keypoint_ds")
    rows = {r["question"]: r for r in manager.get(f"{API}/{pid}/items/{item_id}").json()["consensus"]}
    for name in ("regions", "pose"):
        assert rows[name]["value"] == expected[name], name
        assert schema.validate_answer({name: rows[name]["value"]}, data(0), partial=True) == {name: rows[name]["value"]}

    jsonl = manager.get(f"{API}/{pid}/export", params={"format": "jsonl"})
    assert jsonl.status_code == 200, jsonl.text
    (doc,) = [json.loads(line) for line in jsonl.text.splitlines() if line]
    assert doc["answer"] == expected

    split = split_of("img/0.jpg")
    # COCO, polygons: segmentation in pixels, bbox and area of the polygon
    archive = export_zip(factory, project, "coco", "regions")
    path = tmp_path / "instances.json"
    path.write_bytes(archive.read(f"annotations/instances_{split}.json"))
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == 1 and len(coco.getAnnIds()) == 2
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["roof", "road"]
    road = coco.loadAnns(coco.getAnnIds(catIds=[2]))[0]
    assert road["segmentation"] == [pytest.approx([0.6 * W, 0.6 * H, 0.9 * W, 0.6 * H, 0.9 * W, 0.9 * H])]
    assert road["bbox"] == pytest.approx([0.6 * W, 0.6 * H, 0.3 * W, 0.3 * H])
    assert road["area"] == pytest.approx(0.3 * W * 0.3 * H / 2)
    # pycocotools rasterizes the segmentation (RLE) to about the same area
    assert float(mask_utils.area(coco.annToRLE(road))) == pytest.approx(road["area"], rel=0.05)
    # COCO, keypoints: categories carry names and 1-based skeleton, annotations [x, y, v] * K
    archive = export_zip(factory, project, "coco", "pose")
    path = tmp_path / "keypoints.json"
    path.write_bytes(archive.read(f"annotations/person_keypoints_{split}.json"))
    coco = COCO(str(path))
    cats = coco.loadCats(coco.getCatIds())
    assert cats[0]["keypoints"] == ["nose", "left_wrist", "right_wrist"] and cats[0]["skeleton"] == [[1, 2], [1, 3]]
    assert cats[1]["keypoints"] == ["head", "tail"] and cats[1]["skeleton"] == [[1, 2]]
    person = coco.loadAnns(coco.getAnnIds(catIds=[1]))[0]
    assert person["keypoints"] == [320, 100, 2, 280, 220, 1, 360, 215, 2] and person["num_keypoints"] == 3
    assert person["bbox"] == [280, 100, 80, 120]
    assert sum(a["num_keypoints"] for a in coco.loadAnns(coco.getAnnIds())) == 5

    # YOLO segment: class then the normalized vertices
    archive = export_zip(factory, project, "yolo", "regions")
    meta = yaml.safe_load(archive.read("data.yaml"))
    assert meta["names"] == {0: "roof", 1: "road"} and "kpt_shape" not in meta
    lines = archive.read(f"labels/{split}/img_0.jpg_{item_id}.txt").decode().splitlines()
    parsed = {int(line.split()[0]): [float(v) for v in line.split()[1:]] for line in lines}
    assert parsed[1] == pytest.approx([0.6, 0.6, 0.9, 0.6, 0.9, 0.9])
    assert parsed[0] == pytest.approx([c for p in ROOF["points"] for c in p])
    # YOLO pose: box around the points, then K = 3 points (the cat pads with 0 0 0)
    archive = export_zip(factory, project, "yolo", "pose")
    meta = yaml.safe_load(archive.read("data.yaml"))
    assert meta["kpt_shape"] == [3, 3] and meta["kpt_names"] == {0: ["nose", "left_wrist", "right_wrist"],
                                                                   1: ["head", "tail"]}
    lines = archive.read(f"labels/{split}/img_0.jpg_{item_id}.txt").decode().splitlines()
    rows = {int(line.split()[0]): [float(v) for v in line.split()[1:]] for line in lines}
    assert all(len(r) == 4 + 3 * 3 for r in rows.values())
    assert rows[0][:4] == pytest.approx([320 / W, 160 / H, 80 / W, 120 / H], abs=1e-6)
    assert rows[0][4:] == pytest.approx([0.5, 100 / H, 2, 280 / W, 220 / H, 1, 360 / W, 215 / H, 2], abs=1e-6)
    assert rows[1][4:] == pytest.approx([100 / W, 400 / H, 2, 180 / W, 420 / H, 2, 0, 0, 0], abs=1e-6)

    # Hugging Face: polygons as a list of structs, keypoints as JSON text; datasets loads both
    import datasets

    out = io.BytesIO()
    export_project(factory.ctx, None, pid, "hf", out)
    zipfile.ZipFile(io.BytesIO(out.getvalue())).extractall(tmp_path / "hf")
    loaded = datasets.load_dataset("parquet",
                                   data_files={split: str(tmp_path / "hf" / "data" / f"{split}-00000.parquet")},
                                   cache_dir=str(tmp_path / "cache"))
    (row,) = loaded[split]
    assert row["regions"] == [{"points": p["points"], "label": p["label"]} for p in expected["regions"]]
    assert json.loads(row["pose"]) == expected["pose"] and 0.95 <= row["regions_confidence"] <= 1


def test_disagreeing_polygons_keep_the_item_open(factory):
    annotators = [factory.make_user() for _ in range(3)]
    schema = {"questions": [SCHEMA["questions"][0]]}
    project = factory.make_project(schema=schema, annotators=annotators, overlap_min=1, overlap_max=3)
    res = factory.api_as(project["manager"]).post(f"{API}/{project['id']}/items",
                                                  json=[{"external_id": "x", "data": data(0)}])
    assert res.status_code == 201, res.text
    values = [{"regions": [ROOF]}, {"regions": []}, {"regions": [ROOF, ROAD]}]
    statuses = [answer(factory, a, project["id"], v)["item_status"] for a, v in zip(annotators, values)]
    assert statuses == ["open", "open", "needs_review"]
