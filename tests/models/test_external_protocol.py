"""The external-model protocol's pure half: the request, and an answer checked against it."""

from __future__ import annotations

import pytest

from goldlabel.models import MalformedAnswer, build_request, load_entry_point, parse_answer

LABELS = ["yes", "no"]


def test_request_and_a_good_answer():
    req = build_request(3, "q", LABELS, [(5, {"text": "a"}), (6, {"text": "b"})])
    assert req == {"version": 1, "project_id": 3, "question": {"name": "q", "labels": LABELS},
                   "items": [{"id": 5, "data": {"text": "a"}}, {"id": 6, "data": {"text": "b"}}]}
    out = parse_answer({"version": 1, "predictions": [{"id": 5, "label": "no", "score": 1}]}, [5, 6], LABELS)
    assert out.predictions == {5: ("no", 1.0)} and out.problems == []  # 6 left out: it abstains


@pytest.mark.parametrize("answer", [None, [], "x", {"predictions": []}, {"version": 2, "predictions": []},
                                    {"version": 1}, {"version": 1, "predictions": {}}])
def test_a_malformed_answer_as_a_whole(answer):
    with pytest.raises(MalformedAnswer):
        parse_answer(answer, [5], LABELS)


def test_malformed_predictions_are_dropped_and_named():
    preds = [{"id": 7, "label": "yes", "score": 0.5},       # not asked
             {"id": 5, "label": "maybe", "score": 0.5},     # not a label of the question
             {"id": 6, "label": "yes", "score": 1.5},       # not a probability
             {"id": 6, "label": "yes", "score": float("nan")},
             {"id": True, "label": "yes", "score": 0.5},    # a bool is no id
             "x",
             {"id": 8, "label": "yes", "score": 0.7}, {"id": 8, "label": "no", "score": 0.6},  # twice
             {"id": 9, "label": "no", "score": 0.25}]
    out = parse_answer({"version": 1, "predictions": preds}, [5, 6, 8, 9], LABELS)
    assert out.predictions == {9: ("no", 0.25)}
    assert len(out.problems) == 7  # the first of the two for item 8 is dropped with the second
    assert "id 7 was not asked" in out.problems[0] and "'maybe'" in out.problems[1]
    assert "second prediction for item 8" in out.problems[-1]


def test_entry_points():
    assert load_entry_point("json:dumps")({"a": 1}) == '{"a": 1}'
    assert load_entry_point("os.path:join")("a", "b").endswith("b")
    with pytest.raises(ValueError, match="module:callable"):
        load_entry_point("json.dumps")
    with pytest.raises(TypeError, match="not callable"):
        load_entry_point("json:__name__")
