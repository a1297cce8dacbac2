"""The console's import page takes other tools' files: a Label Studio export (found by its
content) and COCO boxes as gold, chosen in the menus."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser

SCHEMA = {"questions": [
    {"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"], "required": False},
    {"name": "objects", "kind": "boxes", "labels": ["car"], "required": False},
]}


def upload(page, name: str, body: bytes, *, fmt: str = "", target: str = "predictions") -> None:
    page.select_option("[data-testid=import-format]", fmt)
    page.select_option("[data-testid=import-target]", target)
    page.set_input_files("[data-testid=import-file]", files=[{"name": name, "mimeType": "application/json",
                                                               "buffer": body}])
    page.click("[data-testid=import-submit]")
    page.wait_for_selector("[data-testid=import-result]:not([hidden])")


def test_labelstudio_export_then_coco_gold(page, server, ui):
    project = server.make_project(SCHEMA, name="migrated")
    ui.login(project["manager"], f"/console/projects/{project['id']}/import")
    tasks = [{"id": n, "data": {"text": f"review {n}", "image": f"https://example.com/{n}.jpg"},
              "annotations": [{"completed_by": 5, "was_cancelled": False, "result": [
                  {"from_name": "sentiment", "to_name": "text", "type": "choices",
                   "value": {"choices": ["positive"]}}]}], "predictions": []} for n in (1, 2)]
    upload(page, "project-9-at-2024.json", json.dumps(tasks).encode())
    assert page.inner_text("#import-title") == "Imported"
    summary = page.inner_text("#import-summary")
    assert "labelstudio" in summary and "Answers" in summary

    coco = {"images": [{"id": 1, "file_name": "1", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
            "categories": [{"id": 1, "name": "truck"}]}
    page.allowed_problems = ("422",)
    upload(page, "boxes.json", json.dumps(coco).encode(), fmt="coco", target="gold")
    assert page.inner_text("#import-title") == "Nothing was imported"
    cells = page.locator("[data-testid=import-errors] tbody tr").first.locator("td").all_inner_texts()
    assert cells[2] == "unknown_label", cells
    coco["categories"][0]["name"] = "car"
    upload(page, "boxes.json", json.dumps(coco).encode(), fmt="coco", target="gold")
    assert page.inner_text("#import-title") == "Imported"
    assert "coco" in page.inner_text("#import-summary")
