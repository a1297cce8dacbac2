"""The console's views of polygons and keypoint skeletons (no database, no browser)."""

from __future__ import annotations

from goldlabel.web.annotation_views import AnnotationViews

SCHEMA = {"questions": [
    {"name": "regions", "kind": "polygons", "labels": ["roof", "road"], "coordinates": "pixel"},
    {"name": "pose", "kind": "keypoints", "labels": ["person"],
     "skeletons": {"person": {"points": ["nose", "hand", "foot"], "edges": [["nose", "hand"], ["nose", "foot"]]}}},
]}
VIEWS = AnnotationViews(SCHEMA)
DATA = {"image": "https://example.com/a.png", "width": 200, "height": 100}


def test_polygons_are_drawn_in_the_image_coordinates():
    value = [{"points": [[10, 10], [150, 10], [80, 90]], "label": "road"}]
    view = VIEWS.view("regions", value, DATA)
    assert view["kind"] == "polygons" and view["image"] == DATA["image"]
    assert view["view_box"] == "0 0 200 100"
    assert view["shapes"] == [{"points": "10,10 150,10 80,90", "x": "10", "y": "10", "label": "road", "color": "c1"}]


def test_keypoints_draw_edges_between_labeled_points_and_mark_occluded():
    value = [{"label": "person",
              "points": {"nose": {"x": 0.5, "y": 0.2, "v": 2}, "hand": {"x": 0.3, "y": 0.5, "v": 1}}}]
    view = VIEWS.view("pose", value, DATA)
    assert view["view_box"] == "0 0 1 1"
    (inst,) = view["instances"]
    assert inst["edges"] == [{"x1": "0.5", "y1": "0.2", "x2": "0.3", "y2": "0.5"}]  # the foot is not labeled
    assert [(p["name"], p["occluded"]) for p in inst["points"]] == [("nose", False), ("hand", True)]


def test_unsafe_image_is_not_shown_and_bad_values_fall_back_to_json():
    view = VIEWS.view("regions", [], {**DATA, "image": "javascript:alert(1)"})
    assert view["image"] is None
    assert VIEWS.view("pose", [{"label": "dog", "points": {}}], DATA)["kind"] == "json"
