"""The console shows answers as a person reads them: spans highlighted in their text, boxes drawn
on their image, rankings in order, ratings as values, thumbnails in lists; never raw JSON or a
wall of base64. Hostile labels and candidate texts stay text."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from goldlabel.services.item_refs import decode_item
from goldlabel.storage.tables import items

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=window.__xss=1>"
TEXT = "I bought the Anker PowerCore 10000, and it charges my phone twice."
TEXT_SCHEMA = {"questions": [
    {"name": "entities", "kind": "spans", "labels": ["PRODUCT", "BRAND", XSS]},
    {"name": "stars", "kind": "rating", "min": 1, "max": 5, "scale_labels": ["awful", "poor", "ok", "good", "great"]},
    {"name": "topics", "kind": "multi_choice", "labels": ["battery", "price", "shipping"]},
    {"name": "best", "kind": "ranking", "source": "responses"},
]}
IMAGE_SCHEMA = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["car", "person", XSS]}]}


def submit(server, project, annotator, values) -> list[int]:
    """Answer the next items with ``values`` (one per item); returns the item ids answered."""
    ids = []
    with server.api_as(annotator) as api:
        for value in values:
            lease = api.post(f"/api/v1/projects/{project['id']}/next")
            assert lease.status_code == 200, lease.text
            res = api.post(f"/api/v1/projects/{project['id']}/answers",
                           json={"lease_token": lease.json()["token"], "value": value, "duration_ms": 3000})
            assert res.status_code == 201, res.text
            ids.append(decode_item(server.ctx, project["id"], annotator.id, lease.json()["item"]["id"]))
    return ids


def text_answer(product_end: int, stars: int, ranking: list[str]) -> dict:
    return {"entities": [{"start": 13, "end": 18, "label": "BRAND"},
                         {"start": 13, "end": product_end, "label": "PRODUCT"},
                         {"start": 54, "end": 59, "label": XSS}],
            "stars": stars, "topics": ["battery"], "best": ranking}


def test_text_answers_render_as_highlights_values_and_order(page, server, ui):
    a1, a2 = server.make_user(), server.make_user()
    project = server.make_project(TEXT_SCHEMA, annotators=[a1, a2], name="Power banks", overlap_min=2, overlap_max=2)
    responses = [{"id": "r1", "text": "It charges twice."}, {"id": "r2", "text": f"Buy it {XSS}"}]
    server.add_items(project, [{"external_id": "pb1", "data": {"text": TEXT, "responses": responses}}])
    [item_id] = submit(server, project, a1, [text_answer(34, 4, ["r2", "r1"])])
    submit(server, project, a2, [text_answer(28, 2, ["r1", "r2"])])
    page.add_init_script("window.__xss = undefined;")
    ui.login(project["manager"], f"/console/projects/{project['id']}/items/{item_id}")

    answers = page.locator("[data-testid=answers] tbody tr")
    assert answers.count() == 2
    first = answers.nth(0)
    # Spans: the text with the labeled pieces marked, the label beside each piece.
    marks = first.locator(".span-text-view mark.seg")
    assert marks.all_inner_texts() == ["Anker", " PowerCore 10000", "phone"]
    assert [marks.nth(i).get_attribute("data-labels") for i in range(3)] == ["BRAND, PRODUCT", "PRODUCT", XSS]
    assert first.locator(".span-text-view").inner_text() == TEXT
    # Rating as a value on its scale, with its scale label; multi-choice as labels.
    assert first.locator(".rating-view").inner_text() == "4 / 5 good"
    assert first.locator(".label-view").all_inner_texts() == ["battery"]
    # Ranking in order, candidates by their text.
    assert first.locator(".ranking-view li").all_inner_texts() == [f"1 Buy it {XSS} r2", "2 It charges twice. r1"]
    body = page.inner_text("main")
    assert '"start"' not in body and '"label"' not in body
    ui.screenshot("console-item-spans")

    # The review queue and the item browser: short views, no JSON either.
    page.goto(f"/console/projects/{project['id']}/review")
    row = page.locator("[data-testid=review-table] tbody tr").first
    assert "Anker PowerCore" in row.locator(".span-chips").inner_text()  # the consensus spans, as chips
    assert '"start"' not in page.inner_text("main")
    ui.screenshot("console-review-spans")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src=x]").count() == 0


def test_boxes_are_drawn_on_the_image_and_lists_show_thumbnails(page, server, ui, image_url):
    a1, a2 = server.make_user(), server.make_user()
    project = server.make_project(IMAGE_SCHEMA, annotators=[a1, a2], name="Street scenes",
                                  overlap_min=2, overlap_max=2)
    server.add_items(project, [{"external_id": f"img{i}", "data": {"image": image_url}} for i in range(3)]
                     + [{"external_id": "evil", "data": {"image": "https://placeholder.example/a.png"}}])
    # Import now refuses a javascript: image; data stored before that rule may still hold one.
    with server.ctx.engine.begin() as conn:
        conn.execute(sa.update(items).where(items.c.project_id == project["id"],
                                            items.c.external_id == "evil")
                     .values(data={"image": "javascript:window.__xss=1"}))
    car = {"x": 0.09375, "y": 0.475, "w": 0.34375, "h": 0.225, "label": "car"}
    person = {"x": 0.63, "y": 0.3, "w": 0.085, "h": 0.4, "label": "person"}
    evil = {"x": 0.8, "y": 0.05, "w": 0.1, "h": 0.1, "label": XSS}
    ids = submit(server, project, a1, [{"objects": [car, person, evil]}] * 3)
    submit(server, project, a2, [{"objects": [car]}] * 3)
    page.add_init_script("window.__xss = undefined;")
    ui.login(project["manager"], f"/console/projects/{project['id']}/items/{ids[0]}")

    first = page.locator("[data-testid=answers] tbody tr").nth(0)
    rects = first.locator(".boxes-view svg rect")
    assert rects.count() == 3
    assert [rects.nth(0).get_attribute(k) for k in ("x", "y", "width", "height")] == [
        "9.375%", "47.500%", "34.375%", "22.500%"]
    # The rectangle lies on the car in the picture: compare the drawn box with the image's box.
    img = first.locator(".boxes-view img").bounding_box()
    box = rects.nth(0).bounding_box()
    assert abs(box["x"] - (img["x"] + 0.09375 * img["width"])) < 2
    assert abs(box["width"] - 0.34375 * img["width"]) < 3
    assert first.locator(".boxes-view svg text").all_text_contents()[:2] == ["car", "person"]
    # The data section shows the picture, not its base64.
    assert page.locator("[data-testid=item-data] img.item-image").count() == 1
    assert "base64" not in page.inner_text("main")
    ui.screenshot("console-item-boxes")

    page.goto(f"/console/projects/{project['id']}/items")
    table = page.locator("[data-testid=items-table]")
    assert table.locator("img.thumb").count() == 3  # the javascript: image is not shown
    assert "base64" not in table.inner_text()
    ui.screenshot("console-items-thumbnails")
    page.goto(f"/console/projects/{project['id']}/review")
    assert page.locator("[data-testid=review-table] img.thumb").count() >= 1
    assert "car" in page.inner_text("[data-testid=review-table] .box-count")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src=x], img[src^=javascript]").count() == 0
