"""Polygons and keypoints in Chromium: drawn with mouse and keyboard in the workspace, stored in
the question's coordinates (exact at the displayed scale), and drawn on the image in the console."""

from __future__ import annotations

import pytest

from goldlabel.services.item_refs import decode_item

pytestmark = pytest.mark.browser

W, H = 640, 400
POLYGON_SCHEMA = {"questions": [{"name": "regions", "kind": "polygons", "labels": ["car", "road"],
                                 "title": "Outline the car and the road"}]}
POSE_SCHEMA = {"questions": [{
    "name": "pose", "kind": "keypoints", "labels": ["person"], "coordinates": "pixel",
    "title": "Place the person's keypoints",
    "skeletons": {"person": {"points": ["head", "left_hand", "right_hand", "left_foot", "right_foot"],
                             "edges": [["head", "left_hand"], ["head", "right_hand"], ["head", "left_foot"],
                                       ["head", "right_foot"]]}}}]}


def start(ui, project, annotator):
    ui.open_workspace(project, annotator)
    ui.page.keyboard.press("Enter")


def click(page, layer, x, y):
    page.mouse.click(layer["x"] + x * layer["width"], layer["y"] + y * layer["height"])


def wait_for_image(page):
    page.wait_for_selector(".boxes-image")
    page.wait_for_function("() => document.querySelector('.boxes-image').complete")


def test_draw_edit_and_delete_polygons(page, server, ui, image_url):
    annotator = server.make_user()
    project = server.make_project(POLYGON_SCHEMA, annotators=[annotator], name="Street outlines")
    server.add_items(project, [{"external_id": f"p{i}", "data": {"image": image_url, "caption": f"scene {i}"}}
                               for i in range(2)])
    start(ui, project, annotator)
    wait_for_image(page)
    layer = page.locator("[data-testid=polygons-layer]").bounding_box()
    # The car: four clicks, closed by clicking the first point again.
    for x, y in [(0.10, 0.47), (0.44, 0.47), (0.44, 0.70), (0.10, 0.70)]:
        click(page, layer, x, y)
    click(page, layer, 0.10, 0.47)
    # The road: three clicks, one too many taken back with Backspace, closed by Enter, then
    # labeled: a number key labels the polygon just drawn (and the next ones), as for boxes.
    for x, y in [(0.002, 0.66), (0.998, 0.66), (0.998, 0.998), (0.5, 0.2)]:
        click(page, layer, x, y)
    page.keyboard.press("Backspace")
    page.keyboard.press("Enter")
    page.keyboard.press("2")
    # A third outline, cancelled with Escape; then a crossing outline is refused.
    click(page, layer, 0.6, 0.1)
    click(page, layer, 0.7, 0.1)
    page.keyboard.press("Escape")
    for x, y in [(0.6, 0.1), (0.8, 0.3), (0.8, 0.1), (0.6, 0.3)]:
        click(page, layer, x, y)
    page.keyboard.press("Enter")
    assert "crosses itself" in page.inner_text(".shapes .muted")
    page.keyboard.press("Escape")
    assert page.locator(".shapes-layer .polygon").count() == 2
    # Select the car, drag its bottom-right vertex to (0.46, 0.72).
    page.locator(".shapes-layer .polygon.c0 polygon").click(position={"x": 20, "y": 20})
    vertex = page.locator(".shapes-layer .polygon.selected .vertex").nth(2).bounding_box()
    page.mouse.move(vertex["x"] + vertex["width"] / 2, vertex["y"] + vertex["height"] / 2)
    page.mouse.down()
    page.mouse.move(layer["x"] + 0.46 * layer["width"], layer["y"] + 0.72 * layer["height"], steps=4)
    page.mouse.up()
    ui.screenshot("workspace-polygons")
    page.keyboard.press("Enter")  # submit
    ui.wait_for_next(".item-data .field-text", "scene 0")
    # Second item: draw one polygon and delete it (Delete removes the selected polygon).
    wait_for_image(page)
    for x, y in [(0.2, 0.2), (0.3, 0.2), (0.25, 0.3)]:
        click(page, layer, x, y)
    page.keyboard.press("Enter")
    page.keyboard.press("Delete")
    assert page.locator(".shapes-layer .polygon").count() == 0
    page.keyboard.press("Enter")
    page.wait_for_selector("#ws-message:not([hidden])")

    first, second = server.answers_of(project, annotator)
    car, road = first["value"]["regions"]
    assert car["label"] == "car" and road["label"] == "road"
    flat = lambda points: [c for p in points for c in p]
    assert flat(car["points"]) == pytest.approx([0.10, 0.47, 0.44, 0.47, 0.46, 0.72, 0.10, 0.70], abs=0.004)
    assert flat(road["points"]) == pytest.approx([0.002, 0.66, 0.998, 0.66, 0.998, 0.998], abs=0.004)
    assert second["value"]["regions"] == []


def test_place_keypoints_of_a_skeleton(page, server, ui, image_url):
    annotator = server.make_user()
    project = server.make_project(POSE_SCHEMA, annotators=[annotator], name="Poses")
    server.add_items(project, [{"external_id": "k0", "data": {"image": image_url, "width": W, "height": H,
                                                              "caption": "a person"}}])
    start(ui, project, annotator)
    wait_for_image(page)
    assert "Place “head” (1/5)" in page.inner_text(".shapes-status")
    layer = page.locator("[data-testid=keypoints-layer]").bounding_box()
    # head, left hand (then O: occluded), skip the right hand (X), the two feet: the instance ends.
    click(page, layer, 430 / W, 150 / H)
    click(page, layer, 400 / W, 200 / H)
    page.keyboard.press("o")
    page.keyboard.press("x")
    assert "left_foot" in page.inner_text(".shapes-status")
    click(page, layer, 415 / W, 300 / H)
    click(page, layer, 445 / W, 300 / H)
    assert page.locator(".shapes-layer .skeleton .edge").count() == 3
    assert page.locator(".shapes-layer .kp.occluded").count() == 1
    # A second instance started and cancelled with Escape, one point taken back with Backspace.
    click(page, layer, 100 / W, 100 / H)
    click(page, layer, 120 / W, 120 / H)
    page.keyboard.press("Backspace")
    page.keyboard.press("Escape")
    assert page.locator(".shapes-layer .skeleton").count() == 1
    # Drag the right foot 10 px to the right (in image pixels).
    foot = page.locator(".shapes-layer .kp").nth(3).bounding_box()
    page.mouse.move(foot["x"] + foot["width"] / 2, foot["y"] + foot["height"] / 2)
    page.mouse.down()
    page.mouse.move(layer["x"] + 455 / W * layer["width"], layer["y"] + 300 / H * layer["height"], steps=4)
    page.mouse.up()
    ui.screenshot("workspace-keypoints")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ws-message:not([hidden])")
    (answer,) = server.answers_of(project, annotator)
    (person,) = answer["value"]["pose"]
    points = person["points"]
    assert list(points) == ["head", "left_hand", "left_foot", "right_foot"]
    tol = 2.5  # pixels of the 640 x 400 image, shown at its own size or scaled to the panel
    assert (points["head"]["x"], points["head"]["y"]) == pytest.approx((430, 150), abs=tol)
    assert (points["left_hand"]["v"], points["head"]["v"]) == (1, 2)
    assert (points["right_foot"]["x"], points["right_foot"]["y"]) == pytest.approx((455, 300), abs=tol)


def test_console_draws_polygons_and_skeletons_on_the_image(page, server, ui, image_url):
    schema = {"questions": [POLYGON_SCHEMA["questions"][0], POSE_SCHEMA["questions"][0]]}
    a1 = server.make_user()
    project = server.make_project(schema, annotators=[a1], name="Street shapes")
    server.add_items(project, [{"external_id": "s0", "data": {"image": image_url, "width": W, "height": H}}])
    value = {"regions": [{"points": [[0.094, 0.475], [0.44, 0.475], [0.44, 0.7], [0.094, 0.7]], "label": "car"},
                         {"points": [[0.0, 0.65], [1.0, 0.65], [1.0, 1.0], [0.0, 1.0]], "label": "road"}],
             "pose": [{"label": "person", "points": {
                 "head": {"x": 430, "y": 150}, "left_hand": {"x": 400, "y": 210, "v": 1},
                 "right_hand": {"x": 460, "y": 210}, "left_foot": {"x": 418, "y": 278},
                 "right_foot": {"x": 442, "y": 278}}}]}
    with server.api_as(a1) as api:
        lease = api.post(f"/api/v1/projects/{project['id']}/next")
        res = api.post(f"/api/v1/projects/{project['id']}/answers",
                       json={"lease_token": lease.json()["token"], "value": value})
        assert res.status_code == 201, res.text
        item_id = decode_item(server.ctx, project["id"], a1.id, lease.json()["item"]["id"])
    ui.login(project["manager"], f"/console/projects/{project['id']}/items/{item_id}")
    row = page.locator("[data-testid=answers] tbody tr").nth(0)
    polygons = row.locator(".shapes-view-layer polygon")
    assert polygons.count() == 2
    assert [len(polygons.nth(i).get_attribute("points").split()) for i in (0, 1)] == [4, 4]
    img = row.locator(".boxes-view img").first.bounding_box()
    car = polygons.nth(0).bounding_box()
    # The outline lies on the car in the picture. (Chromium pads an SVG box by the stroke, so
    # compare centres, and sizes loosely.)
    assert abs(car["x"] + car["width"] / 2 - (img["x"] + (0.094 + 0.44) / 2 * img["width"])) < 1.5
    assert abs(car["y"] + car["height"] / 2 - (img["y"] + (0.475 + 0.7) / 2 * img["height"])) < 1.5
    assert abs(car["width"] - (0.44 - 0.094) * img["width"]) < 10
    assert row.locator(".shapes-view-layer .kp-edge").count() == 4
    assert row.locator(".shapes-view-layer .kp-point.occluded").count() == 1
    # The consensus of the one answer is drawn the same way, point for point.
    consensus = page.locator("[data-testid=consensus] .shapes-view-layer polygon")
    assert [consensus.nth(i).get_attribute("points") for i in (0, 1)] == \
        [polygons.nth(i).get_attribute("points") for i in (0, 1)]
    assert page.locator("[data-testid=consensus] .shapes-view-layer .kp-edge").count() == 4
    ui.screenshot("console-item-shapes")


def test_project_form_adds_polygon_and_keypoint_questions_with_a_live_preview(page, server, ui):
    import json

    manager = server.make_user("manager")
    ui.login(manager, "/console")
    page.click("[data-testid=new-project]")
    page.fill("[data-testid=project-name]", "Poses and outlines")
    page.wait_for_selector("#preview .question[data-question=sentiment] button.opt")
    for name, kind, labels in (("regions", "polygons", "roof, road"), ("pose", "keypoints", "person")):
        page.fill("[data-testid=q-name]", name)
        page.select_option("[data-testid=q-kind]", kind)
        page.fill("[data-testid=q-labels]", labels)
        page.click("[data-testid=q-add]")
        page.wait_for_selector(f"#preview .question[data-question={name}]")
    assert page.locator("#preview [data-testid=polygons-layer]").count() == 1
    assert "Place “head” (1/3)" in page.inner_text("#preview .question[data-question=pose] .shapes-status")
    schema = json.loads(page.input_value("[data-testid=schema-json]"))
    assert schema["questions"][2]["skeletons"] == {"person": {
        "points": ["head", "left_hand", "right_hand"], "edges": [["head", "left_hand"], ["head", "right_hand"]]}}
    page.click("[data-testid=save-project]")
    page.wait_for_url("**/import")
    project_id = int(page.url.split("/")[-2])
    with server.api_as(manager) as api:
        saved = api.get(f"/api/v1/projects/{project_id}").json()["label_schema"]["questions"]
    assert [q["kind"] for q in saved] == ["choice", "polygons", "keypoints"]
    assert saved[2]["skeletons"]["person"]["sigmas"] == {"head": 0.072, "left_hand": 0.072, "right_hand": 0.072}
