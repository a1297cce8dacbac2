"""Label schema: the polygons and keypoints kinds, their options and every error code."""

from __future__ import annotations

import pytest

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.label_schema import KeypointsQuestion, LabelSchema, PolygonsQuestion
from goldlabel.domain.label_schema.keypoints import COCO_SIGMAS, DEFAULT_SIGMA

POLY = {"name": "regions", "kind": "polygons", "labels": ["road", "roof"]}
POSE = {"name": "pose", "kind": "keypoints", "labels": ["person", "cat"],
        "skeletons": {"person": {"points": ["nose", "left_wrist", "hand"], "edges": [["nose", "left_wrist"]],
                                 "sigmas": {"hand": 0.05}},
                      "cat": {"points": ["head", "tail"]}}}
SQUARE = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]


def problems(schema, value, data=None):
    with pytest.raises(GoldlabelError) as info:
        LabelSchema.parse(schema).validate_answer(value, data)
    return [(e.loc, e.code) for e in info.value.errors]


def schema_problems(question):
    with pytest.raises(GoldlabelError) as info:
        LabelSchema.parse({"questions": [question]})
    return [(e.loc[3:], e.code) for e in info.value.errors]


def test_polygons_parse_and_round_trip():
    schema = LabelSchema.parse({"questions": [POLY]})
    (q,) = schema.questions
    assert isinstance(q, PolygonsQuestion) and q.kind == "polygons"
    assert LabelSchema.parse(schema.to_json()) == schema
    assert schema.to_json()["questions"][0]["coordinates"] == "relative"


def test_polygon_answer_normalized_and_closing_point_dropped():
    schema = LabelSchema.parse({"questions": [POLY]})
    closed = [*SQUARE, SQUARE[0]]
    got = schema.validate_answer({"regions": [{"points": closed, "label": "road"}]})
    assert got == {"regions": [{"points": SQUARE, "label": "road"}]}
    assert schema.validate_answer({"regions": []}) == {"regions": []}


@pytest.mark.parametrize(
    ("polygon", "expected"),
    [
        ({"points": [[0.1, 0.1], [0.2, 0.2]], "label": "road"}, [((0, "points"), "too_few_points")]),
        ({"points": [[0.1, 0.1], [0.2, 0.2], [0.1, 0.1]], "label": "road"}, [((0, "points"), "too_few_points")]),
        # a bow tie: the edges (0.1,0.1)-(0.4,0.4) and (0.4,0.1)-(0.1,0.4) cross
        ({"points": [[0.1, 0.1], [0.4, 0.4], [0.4, 0.1], [0.1, 0.4]], "label": "road"},
         [((0, "points"), "self_intersection")]),
        # a vertex that touches a non-adjacent edge
        ({"points": [[0.1, 0.1], [0.5, 0.1], [0.3, 0.1], [0.3, 0.4]], "label": "road"},
         [((0, "points"), "self_intersection")]),
        ({"points": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], "label": "road"}, [((0, "points"), "degenerate_polygon")]),
        ({"points": [[0.1, 0.1], [1.2, 0.1], [0.4, 0.4]], "label": "road"},
         [((0, "points", 1), "point_out_of_bounds")]),
        ({"points": [[0.1, -0.1], [0.2, 0.1], [0.4, 0.4]], "label": "road"},
         [((0, "points", 0), "point_out_of_bounds")]),
        ({"points": [[0.1, "a"], [0.2, 0.1], [0.4, 0.4]], "label": "road"}, [((0, "points", 0), "wrong_type")]),
        ({"points": [[0.1], [0.2, 0.1], [0.4, 0.4]], "label": "road"}, [((0, "points", 0), "wrong_type")]),
        ({"points": SQUARE, "label": "river"}, [((0, "label"), "unknown_label")]),
        ({"points": SQUARE}, [((0, "label"), "missing_field_value")]),
        ({"points": SQUARE, "label": "road", "x": 1}, [((0, "x"), "unknown_field")]),
        ({"points": "0,0 1,1", "label": "road"}, [((0, "points"), "wrong_type")]),
        ({"points": [[0.001 * i, 0.0] for i in range(10_001)], "label": "road"},
         [((0, "points"), "too_many_points")]),
    ],
)
def test_polygon_errors(polygon, expected):
    got = problems({"questions": [POLY]}, {"regions": [polygon]})
    assert got == [(("value", "regions", *loc), code) for loc, code in expected]


def test_duplicate_polygon_and_pixel_bounds():
    assert problems({"questions": [POLY]}, {"regions": [{"points": SQUARE, "label": "road"}] * 2}) == [
        (("value", "regions", 1), "duplicate_polygon")]
    pixel = {**POLY, "coordinates": "pixel"}
    data = {"image": "https://example.org/a.png", "width": 640, "height": 480}
    ok = [[10, 10], [600, 10], [300, 470]]
    assert LabelSchema.parse({"questions": [pixel]}).validate_answer(
        {"regions": [{"points": ok, "label": "roof"}]}, data)["regions"][0]["points"] == ok
    assert problems({"questions": [pixel]}, {"regions": [{"points": [[10, 10], [600, 10], [300, 490]],
                                                          "label": "roof"}]}, data) == [
        (("value", "regions", 0, "points", 2), "point_out_of_bounds")]
    # pixel coordinates without the image size at hand: only negative coordinates are refused
    assert problems({"questions": [pixel]}, {"regions": [{"points": [[-1, 10], [600, 10], [300, 490]],
                                                          "label": "roof"}]}) == [
        (("value", "regions", 0, "points", 0), "point_out_of_bounds")]
    assert problems({"questions": [pixel]}, {"regions": []}, {"image": "https://example.org/a.png"}) == [
        (("value", "regions"), "missing_source"), (("value", "regions"), "missing_source")]


def test_keypoints_parse_with_coco_and_custom_sigmas_and_round_trip():
    schema = LabelSchema.parse({"questions": [POSE]})
    (q,) = schema.questions
    assert isinstance(q, KeypointsQuestion)
    person = q.skeleton("person")
    assert person.points == ("nose", "left_wrist", "hand")
    assert person.edges == ((0, 1),)
    assert person.sigmas == (COCO_SIGMAS["nose"], COCO_SIGMAS["left_wrist"], 0.05)
    assert q.skeleton("cat").sigmas == (DEFAULT_SIGMA, DEFAULT_SIGMA)
    normalized = schema.to_json()
    assert normalized["questions"][0]["skeletons"]["person"] == {
        "points": ["nose", "left_wrist", "hand"], "edges": [["nose", "left_wrist"]],
        "sigmas": {"nose": 0.026, "left_wrist": 0.062, "hand": 0.05}}
    assert LabelSchema.parse(normalized) == schema


@pytest.mark.parametrize(
    ("skeletons", "expected"),
    [
        (None, [(("skeletons",), "wrong_type")]),
        ({"person": {"points": ["a"]}}, [(("skeletons", "cat"), "bad_option")]),
        ({"person": {"points": ["a"]}, "cat": {"points": ["b"]}, "dog": {"points": ["c"]}},
         [(("skeletons", "dog"), "bad_option")]),
        ({"person": {"points": []}, "cat": {"points": ["b"]}}, [(("skeletons", "person", "points"), "bad_option")]),
        ({"person": {"points": ["a", "a"]}, "cat": {"points": ["b"]}},
         [(("skeletons", "person", "points", 1), "bad_option")]),
        ({"person": {"points": ["a", "b"], "edges": [["a", "z"]]}, "cat": {"points": ["b"]}},
         [(("skeletons", "person", "edges", 0), "bad_option")]),
        ({"person": {"points": ["a", "b"], "edges": [["a", "a"]]}, "cat": {"points": ["b"]}},
         [(("skeletons", "person", "edges", 0), "bad_option")]),
        ({"person": {"points": ["a"], "sigmas": {"a": 0}}, "cat": {"points": ["b"]}},
         [(("skeletons", "person", "sigmas", "a"), "bad_option")]),
        ({"person": {"points": ["a"], "sigmas": {"z": 0.1}}, "cat": {"points": ["b"]}},
         [(("skeletons", "person", "sigmas", "z"), "bad_option")]),
        ({"person": {"points": ["a"], "bones": []}, "cat": {"points": ["b"]}},
         [(("skeletons", "person", "bones"), "unknown_option")]),
    ],
)
def test_keypoint_schema_errors(skeletons, expected):
    question = {**POSE}
    if skeletons is None:
        question.pop("skeletons")
    else:
        question["skeletons"] = skeletons
    assert schema_problems(question) == expected


def test_keypoint_answer_normalized():
    schema = LabelSchema.parse({"questions": [POSE]})
    value = {"pose": [{"label": "person", "points": {"hand": {"x": 0.3, "y": 0.6, "v": 1},
                                                     "nose": {"x": 0.5, "y": 0.2},
                                                     "left_wrist": {"v": 0}}}]}
    assert schema.validate_answer(value) == {"pose": [{"label": "person", "points": {
        "nose": {"x": 0.5, "y": 0.2, "v": 2}, "hand": {"x": 0.3, "y": 0.6, "v": 1}}}]}


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        ({"label": "person", "points": {"elbow": {"x": 0.1, "y": 0.1}}},
         [((0, "points", "elbow"), "unknown_keypoint")]),
        ({"label": "cat", "points": {"nose": {"x": 0.1, "y": 0.1}}}, [((0, "points", "nose"), "unknown_keypoint")]),
        ({"label": "person", "points": {"nose": {"x": 1.5, "y": 0.1}}},
         [((0, "points", "nose"), "keypoint_out_of_bounds")]),
        ({"label": "person", "points": {"nose": {"x": 0.5, "y": -0.01, "v": 1}}},
         [((0, "points", "nose"), "keypoint_out_of_bounds")]),
        ({"label": "person", "points": {"nose": {"x": 0.5, "y": 0.5, "v": 3}}},
         [((0, "points", "nose", "v"), "bad_visibility")]),
        ({"label": "person", "points": {"nose": {"x": 0.5, "y": 0.5, "v": True}}},
         [((0, "points", "nose", "v"), "bad_visibility")]),
        ({"label": "person", "points": {"nose": {"x": 0.5, "v": 2}}},
         [((0, "points", "nose", "y"), "missing_field_value")]),
        ({"label": "person", "points": {"nose": {"v": 0}}}, [((0, "points"), "no_keypoints")]),
        ({"label": "person", "points": {}}, [((0, "points"), "no_keypoints")]),
        ({"label": "person", "points": {"nose": {"x": 0.5, "y": 0.5, "z": 1}}},
         [((0, "points", "nose", "z"), "unknown_field")]),
        ({"label": "dog", "points": {}}, [((0, "label"), "unknown_label")]),
        ({"label": "person", "points": [[0.5, 0.5]]}, [((0, "points"), "wrong_type")]),
        ({"points": {}}, [((0, "label"), "missing_field_value")]),
    ],
)
def test_keypoint_errors(instance, expected):
    got = problems({"questions": [POSE]}, {"pose": [instance]})
    assert got == [(("value", "pose", *loc), code) for loc, code in expected]


def test_pixel_keypoints_outside_the_image():
    pixel = {**POSE, "coordinates": "pixel"}
    data = {"image": "https://example.org/a.png", "width": 100, "height": 50}
    value = {"pose": [{"label": "cat", "points": {"head": {"x": 50, "y": 49}, "tail": {"x": 101, "y": 10}}}]}
    assert problems({"questions": [pixel]}, value, data) == [
        (("value", "pose", 0, "points", "tail"), "keypoint_out_of_bounds")]


def test_item_data_of_shape_questions_is_checked_at_import():
    schema = LabelSchema.parse({"questions": [POLY, POSE]})
    schema.validate_item_data({"image": "https://example.org/a.png"})
    with pytest.raises(GoldlabelError) as info:
        schema.validate_item_data({"image": "javascript:alert(1)"})
    assert {e.code for e in info.value.errors} == {"unsupported_scheme"}
