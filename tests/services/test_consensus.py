"""Consensus and confidence-based stopping for multi_choice, rating, text, ranking, spans and
boxes: per answer, in the re-fit and in the export, through the API on both backends."""

from __future__ import annotations

import json

import pytest

from goldlabel.domain.label_schema import LabelSchema

API = "/api/v1/projects"

RATING = {"questions": [{"name": "fluency", "kind": "rating", "min": 1, "max": 5}]}
ALL_KINDS = {"questions": [
    {"name": "topics", "kind": "multi_choice", "labels": ["sport", "politics", "tech"]},
    {"name": "fluency", "kind": "rating", "min": 1, "max": 5},
    {"name": "summary", "kind": "text"},
    {"name": "preference", "kind": "ranking", "candidates": ["a", "b", "c"]},
    {"name": "entities", "kind": "spans", "labels": ["PER", "ORG"]},
    {"name": "objects", "kind": "boxes", "labels": ["car", "person"]},
]}
TEXT = "Ada Lovelace met Babbage at Cambridge"
DATA = {"text": TEXT, "image": "https://example.test/1.png"}
ADA = {"start": 0, "end": 12, "label": "PER"}
CAR = {"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4, "label": "car"}


def add_items(factory, project, n: int) -> None:
    rows = [{"external_id": f"k{i}", "data": DATA} for i in range(n)]
    res = factory.api_as(project["manager"]).post(f"{API}/{project['id']}/items", json=rows)
    assert res.status_code in (200, 201), res.text


def answer(factory, annotator, pid: int, value: dict) -> dict:
    api = factory.api_as(annotator)
    lease = api.post(f"{API}/{pid}/next")
    assert lease.status_code == 200, lease.text
    res = api.post(f"{API}/{pid}/answers", json={"lease_token": lease.json()["token"], "value": value})
    assert res.status_code == 201, res.text
    return res.json()


def only_item(factory, project) -> dict:
    manager = factory.api_as(project["manager"])
    item_id = manager.get(f"{API}/{project['id']}/items").json()["items"][0]["id"]
    return manager.get(f"{API}/{project['id']}/items/{item_id}").json()


def test_rating_item_stops_early_when_annotators_agree(factory):
    annotators = [factory.make_user() for _ in range(6)]
    project = factory.make_project(schema=RATING, annotators=annotators, overlap_min=1, overlap_max=6)
    add_items(factory, project, 1)
    statuses, confidences = [], []
    for ann in annotators[:4]:
        statuses.append(answer(factory, ann, project["id"], {"fluency": 4})["item_status"])
        row = only_item(factory, project)["consensus"][0]
        assert (row["question"], row["value"], row["method"]) == ("fluency", 4, "posterior")
        confidences.append(row["confidence"])
    # P(true rating within half a step of 4): 0.58, 0.82, 0.93, 0.97 -> final at the fourth
    assert statuses == ["open", "open", "open", "final"]
    assert confidences == sorted(confidences) and confidences[-1] >= 0.95
    assert factory.api_as(annotators[4]).post(f"{API}/{project['id']}/next").status_code == 204


def test_rating_item_continues_when_annotators_disagree(factory):
    annotators = [factory.make_user() for _ in range(5)]
    project = factory.make_project(schema=RATING, annotators=annotators, overlap_min=1, overlap_max=5)
    add_items(factory, project, 1)
    statuses = [answer(factory, ann, project["id"], {"fluency": r})["item_status"]
                for ann, r in zip(annotators, [1, 5, 2, 4, 3])]
    assert statuses == ["open"] * 4 + ["needs_review"]
    row = only_item(factory, project)["consensus"][0]
    assert row["value"] == 3 and row["confidence"] < 0.6
    assert set(row["contributions"].values()) == {1, 2, 3, 4, 5}


def test_every_kind_gets_consensus_per_answer_refit_and_export(factory):
    annotators = [factory.make_user() for _ in range(4)]
    project = factory.make_project(schema=ALL_KINDS, annotators=annotators, overlap_min=1, overlap_max=4)
    add_items(factory, project, 1)
    pid = project["id"]
    schema = LabelSchema.parse(ALL_KINDS)
    value = {"topics": ["tech", "sport"], "fluency": 4, "summary": "Ada met Babbage.",
             "preference": ["b", "a", "c"], "entities": [ADA], "objects": [CAR]}
    statuses = [answer(factory, ann, pid, value)["item_status"] for ann in annotators]
    # every question agrees: the smallest confidence (rating 0.97; the three-class span and
    # box posteriors are higher) crosses 0.95 at the fourth answer, as for a binary choice
    assert statuses == ["open", "open", "open", "final"]
    detail = only_item(factory, project)
    rows = {r["question"]: r for r in detail["consensus"]}
    assert set(rows) == {q["name"] for q in ALL_KINDS["questions"]}
    expected = schema.validate_answer(value, DATA)
    for name, row in rows.items():
        assert schema.validate_answer({name: row["value"]}, DATA, partial=True) == {name: row["value"]}
        assert row["value"] == expected[name], name
        assert row["method"] == "posterior" and row["status"] == "final"
        assert 0.95 <= row["confidence"] <= 1.0
        assert len(row["contributions"]) == 4

    manager = factory.api_as(project["manager"])
    res = manager.post(f"{API}/{pid}/refit")
    assert res.status_code == 200, res.text
    summary = res.json()["questions"]
    assert {name: summary[name]["method"] for name in rows} == {
        "topics": "onecoin_multi", "fluency": "robust_rating", "summary": "text_medoid",
        "preference": "crowd_bt", "entities": "span_ds", "objects": "box_ds"}
    assert all(summary[name]["answers"] == 4 for name in rows)
    refit_rows = {r["question"]: r for r in only_item(factory, project)["consensus"]}
    for name, row in refit_rows.items():
        assert row["method"] == summary[name]["method"]
        assert schema.validate_answer({name: row["value"]}, DATA, partial=True) == {name: row["value"]}
        assert row["value"] == expected[name], name
        assert 0 < row["confidence"] <= 1
    # skills learned for the kinds whose per-answer update reads them
    skills = manager.get(f"{API}/{pid}/annotators").json()[0]["skills"]
    assert {"topics", "preference", "entities"} <= set(skills)

    export = manager.get(f"{API}/{pid}/export", params={"format": "jsonl"})
    assert export.status_code == 200, export.text
    (doc,) = [json.loads(line) for line in export.text.splitlines() if line]
    assert doc["answer"] == {name: row["value"] for name, row in refit_rows.items()}
    assert doc["confidence"] == pytest.approx({name: row["confidence"] for name, row in refit_rows.items()})
    csv_export = manager.get(f"{API}/{pid}/export", params={"format": "csv"})
    assert csv_export.status_code == 200 and "Ada met Babbage." in csv_export.text


def test_disagreement_on_spans_and_boxes_keeps_the_item_open(factory):
    annotators = [factory.make_user() for _ in range(3)]
    schema = {"questions": [q for q in ALL_KINDS["questions"] if q["kind"] in ("spans", "boxes")]}
    project = factory.make_project(schema=schema, annotators=annotators, overlap_min=1, overlap_max=3)
    add_items(factory, project, 1)
    values = [{"entities": [ADA], "objects": [CAR]},
              {"entities": [], "objects": []},
              {"entities": [{"start": 17, "end": 24, "label": "ORG"}], "objects": [CAR]}]
    statuses = [answer(factory, ann, project["id"], v)["item_status"] for ann, v in zip(annotators, values)]
    assert statuses == ["open", "open", "needs_review"]
    rows = {r["question"]: r for r in only_item(factory, project)["consensus"]}
    assert rows["objects"]["value"] == [CAR] and rows["objects"]["confidence"] < 0.95
    assert rows["entities"]["confidence"] < 0.95
    parsed = LabelSchema.parse(schema)
    for name, row in rows.items():
        parsed.validate_answer({name: row["value"]}, DATA, partial=True)


def test_ranking_from_item_candidates_and_multi_choice_with_optional_question(factory):
    annotators = [factory.make_user() for _ in range(2)]
    schema = {"questions": [
        {"name": "preference", "kind": "ranking"},
        {"name": "topics", "kind": "multi_choice", "labels": ["x", "y"], "required": False},
    ]}
    project = factory.make_project(schema=schema, annotators=annotators, overlap_min=2, overlap_max=2)
    data = {"prompt": "Explain DNS", "responses": [{"id": "m1", "text": "..."}, {"id": "m2", "text": "..."}]}
    res = factory.api_as(project["manager"]).post(f"{API}/{project['id']}/items",
                                                  json=[{"external_id": "p", "data": data}])
    assert res.status_code in (200, 201), res.text
    answer(factory, annotators[0], project["id"], {"preference": ["m2", "m1"]})
    last = answer(factory, annotators[1], project["id"], {"preference": ["m2", "m1"], "topics": ["y"]})
    assert last["item_status"] == "needs_review"  # two agreeing answers: 0.845 < 0.95
    rows = {r["question"]: r for r in only_item(factory, project)["consensus"]}
    assert rows["preference"]["value"] == ["m2", "m1"]
    assert rows["preference"]["confidence"] == pytest.approx(0.845, abs=1e-3)
    assert rows["topics"]["value"] == ["y"] and list(rows["topics"]["contributions"]) == [str(annotators[1].id)]
