"""Label schema parsing and answer validation: exact error codes and field paths for every kind."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.label_schema import (
    ERROR_CODES,
    KINDS,
    BoxesQuestion,
    ChoiceQuestion,
    LabelSchema,
    RankingQuestion,
    RatingQuestion,
)

MINIMAL = {
    "questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]
}
DOC = Path(__file__).resolve().parents[2] / "docs" / "label-schema.md"


# ---- factories ------------------------------------------------------------------------------


def make_schema(*questions: dict[str, Any]) -> LabelSchema:
    return LabelSchema.parse({"questions": list(questions)})


def q(kind: str, name: str = "q", **options: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, **options}


def problems(exc: GoldlabelError) -> list[tuple[tuple[Any, ...], str]]:
    return [(e.loc, e.code) for e in exc.errors]


def schema_problems(obj: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(GoldlabelError) as info:
        LabelSchema.parse(obj)
    assert info.value.code == "validation_failed"
    assert info.value.status == 422
    return problems(info.value)


def answer_problems(schema: LabelSchema, value: Any, item_data: dict | None = None,
                    **kwargs: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(GoldlabelError) as info:
        schema.validate_answer(value, item_data, **kwargs)
    assert info.value.status == 422
    return problems(info.value)


# ---- schema parsing -------------------------------------------------------------------------


def test_minimal_schema_parses_and_validates():
    schema = LabelSchema.parse(MINIMAL)
    (question,) = schema.questions
    assert isinstance(question, ChoiceQuestion)
    assert (question.name, question.kind, question.required) == ("sentiment", "choice", True)
    assert question.labels == ("positive", "negative")
    assert schema.validate_answer({"sentiment": "positive"}) == {"sentiment": "positive"}
    assert answer_problems(schema, {"sentiment": "neutral"}) == [
        (("value", "sentiment"), "unknown_label")
    ]


def test_parse_accepts_json_text():
    import json

    assert LabelSchema.parse(json.dumps(MINIMAL)) == LabelSchema.parse(MINIMAL)
    assert LabelSchema.parse(json.dumps(MINIMAL).encode()) == LabelSchema.parse(MINIMAL)
    assert schema_problems("{not json") == [(("label_schema",), "invalid_json")]


def test_parse_is_idempotent_on_a_parsed_schema():
    schema = LabelSchema.parse(MINIMAL)
    assert LabelSchema.parse(schema) is schema


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ([], [(("label_schema",), "wrong_type")]),
        ({}, [(("label_schema", "questions"), "missing_field")]),
        ({"questions": {}}, [(("label_schema", "questions"), "wrong_type")]),
        ({"questions": []}, [(("label_schema", "questions"), "no_questions")]),
        ({"questions": ["x"]}, [(("label_schema", "questions", 0), "wrong_type")]),
        (
            {"questions": [], "version": 2},
            [(("label_schema", "version"), "unknown_option"),
             (("label_schema", "questions"), "no_questions")],
        ),
    ],
)
def test_schema_shape_errors(obj, expected):
    assert schema_problems(obj) == expected


def test_schema_collects_every_problem_across_questions():
    obj = {
        "questions": [
            {"kind": "choice", "labels": ["a"]},
            {"name": "1bad", "kind": "choice", "labels": ["a"]},
            {"name": "x", "kind": "dropdown"},
            {"name": "x", "kind": "choice", "labels": []},
            {"name": "y", "kind": "choice", "labels": ["a", "a", "", 3]},
            {"name": "z", "kind": "choice", "labels": ["a"], "lables": ["b"], "required": "yes"},
        ]
    }
    assert schema_problems(obj) == [
        (("label_schema", "questions", 0, "name"), "missing_field"),
        (("label_schema", "questions", 1, "name"), "bad_name"),
        (("label_schema", "questions", 2, "kind"), "unknown_kind"),
        (("label_schema", "questions", 3, "labels"), "empty_labels"),
        (("label_schema", "questions", 3, "name"), "duplicate_question"),
        (("label_schema", "questions", 4, "labels", 1), "duplicate_label"),
        (("label_schema", "questions", 4, "labels", 2), "bad_label"),
        (("label_schema", "questions", 4, "labels", 3), "wrong_type"),
        (("label_schema", "questions", 5, "required"), "wrong_type"),
        (("label_schema", "questions", 5, "lables"), "unknown_option"),
    ]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (q("choice"), [("labels", "empty_labels")]),
        (q("choice", labels="ab"), [("labels", "wrong_type")]),
        (q("choice", labels=["a" * 201]), [("labels", 0, "bad_label")]),
        (q("choice", labels=["a"], min=1), [("min", "unknown_option")]),
        (q("rating", labels=["a"]), [("labels", "unknown_option")]),
        (q("text", kind_options=1), [("kind_options", "unknown_option")]),
        ({"name": "q"}, [("kind", "missing_field")]),
        ({"name": 3, "kind": 4}, [("name", "wrong_type"), ("kind", "wrong_type")]),
        (q("choice", name="x" * 65, labels=["a"]), [("name", "bad_name")]),
        (q("choice", name="has space", labels=["a"]), [("name", "bad_name")]),
        (q("choice", labels=["a"], title=5), [("title", "wrong_type")]),
        (q("multi_choice", labels=["a", "b"], min_selections=3),
         [("min_selections", "bad_option")]),
        (q("multi_choice", labels=["a", "b"], max_selections=0),
         [("max_selections", "bad_option")]),
        (
            q("multi_choice", labels=["a", "b", "c"], min_selections=2, max_selections=1),
            [("max_selections", "bad_option")],
        ),
        (q("multi_choice", labels=["a"], min_selections=True), [("min_selections", "wrong_type")]),
        (q("rating", min=5, max=1), [("max", "bad_option")]),
        (q("rating", min=5, max=1, required=0),
         [("required", "wrong_type"), ("max", "bad_option")]),
        (q("rating", min=1, max=1), [("max", "bad_option")]),
        (q("rating", step=0), [("step", "bad_option")]),
        (q("rating", step=-1), [("step", "bad_option")]),
        (q("rating", min=0, max=10, step=3), [("step", "bad_option")]),
        (q("rating", min="1"), [("min", "wrong_type")]),
        (q("rating", max=float("inf")), [("max", "wrong_type")]),
        (q("rating", scale_labels=["bad", "good"]), [("scale_labels", "bad_option")]),
        (q("rating", step=None, scale_labels=["a", "b"]), [("scale_labels", "bad_option")]),
        (q("rating", scale_labels=[]), [("scale_labels", "empty_labels")]),
        (q("text", max_length=0), [("max_length", "bad_option")]),
        (q("text", max_length=2_000_000), [("max_length", "bad_option")]),
        (q("text", min_length=-1), [("min_length", "bad_option")]),
        (q("text", min_length=10, max_length=5), [("max_length", "bad_option")]),
        (q("text", max_length="10"), [("max_length", "wrong_type")]),
        (q("spans", labels=["PER"], source=""), [("source", "bad_option")]),
        (q("spans", labels=["PER"], allow_overlap="no"), [("allow_overlap", "wrong_type")]),
        (q("spans"), [("labels", "empty_labels")]),
        (q("boxes", labels=["car"], coordinates="absolute"), [("coordinates", "bad_option")]),
        (q("boxes"), [("labels", "empty_labels")]),
        (q("boxes", labels=["car"], width_field=""), [("width_field", "bad_option")]),
        (q("ranking", candidates=["a"]), [("candidates", "bad_option")]),
        (q("ranking", candidates=["a", "a"]), [("candidates", 1, "duplicate_label")]),
        (q("ranking", candidates=["a", "b"], source="responses"), [("source", "bad_option")]),
        (q("ranking", allow_ties=1), [("allow_ties", "wrong_type")]),
        (q("ranking", labels=["a"]), [("labels", "unknown_option")]),
    ],
)
def test_question_option_errors(question, expected):
    got = schema_problems({"questions": [question]})
    assert got == [(("label_schema", "questions", 0, *e[:-1]), e[-1]) for e in expected]


def test_every_kind_parses_with_defaults():
    schema = make_schema(
        q("choice", "c", labels=["a", "b"]),
        q("multi_choice", "m", labels=["a", "b"]),
        q("rating", "r"),
        q("text", "t"),
        q("spans", "s", labels=["PER"]),
        q("boxes", "b", labels=["car"]),
        q("ranking", "k"),
        q("polygons", "p", labels=["roof"]),
        q("keypoints", "y", labels=["cat"], skeletons={"cat": {"points": ["head"]}}),
    )
    assert tuple(x.kind for x in schema.questions) == KINDS
    assert schema.to_json()["questions"] == [
        {"name": "c", "kind": "choice", "required": True, "title": None, "description": None,
         "labels": ["a", "b"]},
        {"name": "m", "kind": "multi_choice", "required": True, "title": None,
         "description": None, "labels": ["a", "b"], "min_selections": 0, "max_selections": None},
        {"name": "r", "kind": "rating", "required": True, "title": None, "description": None,
         "min": 1, "max": 5, "step": 1, "scale_labels": None},
        {"name": "t", "kind": "text", "required": True, "title": None, "description": None,
         "min_length": 0, "max_length": 10000},
        {"name": "s", "kind": "spans", "required": True, "title": None, "description": None,
         "labels": ["PER"], "source": "text", "allow_overlap": True},
        {"name": "b", "kind": "boxes", "required": True, "title": None, "description": None,
         "labels": ["car"], "source": "image", "coordinates": "relative",
         "width_field": "width", "height_field": "height"},
        {"name": "k", "kind": "ranking", "required": True, "title": None, "description": None,
         "candidates": None, "source": "responses", "allow_ties": False},
        {"name": "p", "kind": "polygons", "required": True, "title": None, "description": None,
         "labels": ["roof"], "source": "image", "coordinates": "relative",
         "width_field": "width", "height_field": "height"},
        {"name": "y", "kind": "keypoints", "required": True, "title": None, "description": None,
         "labels": ["cat"], "source": "image", "coordinates": "relative",
         "width_field": "width", "height_field": "height",
         "skeletons": {"cat": {"points": ["head"], "edges": [], "sigmas": {"head": 0.072}}}},
    ]


RICH_SCHEMA = {
    "questions": [
        q("choice", "c", labels=["a", "b"], title="Pick one", description="help", required=False),
        q("multi_choice", "m", labels=["a", "b", "c"], min_selections=1, max_selections=2),
        q("rating", "r", min=0, max=1, step=0.25, scale_labels=["0", "1", "2", "3", "4"]),
        q("rating", "cont", min=-1.5, max=1.5, step=None),
        q("text", "t", min_length=3, max_length=50),
        q("spans", "s", labels=["PER", "ORG"], source="body", allow_overlap=False),
        q("boxes", "b", labels=["car"], source="url", coordinates="pixel", width_field="w",
          height_field="h"),
        q("ranking", "k", candidates=["x", "y", "z"], allow_ties=True),
        q("ranking", "pair", source="answers"),
    ]
}


def test_to_json_round_trips():
    schema = LabelSchema.parse(RICH_SCHEMA)
    normalized = schema.to_json()
    again = LabelSchema.parse(normalized)
    assert again == schema
    assert again.to_json() == normalized
    assert normalized["questions"][3]["step"] is None
    assert normalized["questions"][8]["candidates"] is None


def test_question_lookup_and_choice_questions():
    schema = LabelSchema.parse(RICH_SCHEMA)
    assert isinstance(schema.question("k"), RankingQuestion)
    assert schema.names[0] == "c"
    with pytest.raises(GoldlabelError) as info:
        schema.question("nope")
    assert problems(info.value) == [(("question",), "unknown_question")]
    assert [x.name for x in schema.choice_questions()] == ["c"]


# ---- answers: common ------------------------------------------------------------------------


def test_answer_must_be_an_object():
    schema = LabelSchema.parse(MINIMAL)
    assert answer_problems(schema, ["positive"]) == [(("value",), "wrong_type")]
    assert answer_problems(schema, "positive", loc_prefix=("answers", 3, "value")) == [
        (("answers", 3, "value"), "wrong_type")
    ]


def test_unknown_and_missing_questions_are_all_reported():
    schema = make_schema(q("choice", "a", labels=["x"]), q("choice", "b", labels=["x"]))
    assert answer_problems(schema, {"c": "x", "a": 1}) == [
        (("value", "a"), "wrong_type"),
        (("value", "b"), "missing_answer"),
        (("value", "c"), "unknown_question"),
    ]


def test_null_counts_as_absent_and_optional_questions_may_be_skipped():
    schema = make_schema(q("choice", "a", labels=["x"]),
                         q("text", "note", required=False))
    assert schema.validate_answer({"a": "x", "note": None}) == {"a": "x"}
    assert schema.validate_answer({"a": "x"}) == {"a": "x"}
    assert answer_problems(schema, {"a": None}) == [(("value", "a"), "missing_answer")]


def test_partial_answers_skip_required_check_only():
    schema = make_schema(q("choice", "a", labels=["x"]), q("choice", "b", labels=["y"]))
    assert schema.validate_answer({"b": "y"}, partial=True) == {"b": "y"}
    assert answer_problems(schema, {"b": "x"}, partial=True) == [(("value", "b"), "unknown_label")]


def test_result_follows_schema_order():
    schema = make_schema(q("choice", "a", labels=["x"]), q("choice", "b", labels=["y"]))
    assert list(schema.validate_answer({"b": "y", "a": "x"})) == ["a", "b"]


# ---- choice / multi_choice ------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, True, ["positive"], {"label": "positive"}])
def test_choice_wrong_type(value):
    assert answer_problems(LabelSchema.parse(MINIMAL), {"sentiment": value}) == [
        (("value", "sentiment"), "wrong_type")
    ]


def test_multi_choice_normalizes_to_schema_order():
    schema = make_schema(q("multi_choice", "tags", labels=["a", "b", "c"]))
    assert schema.validate_answer({"tags": ["c", "a"]}) == {"tags": ["a", "c"]}
    assert schema.validate_answer({"tags": []}) == {"tags": []}


def test_multi_choice_errors():
    schema = make_schema(q("multi_choice", "tags", labels=["a", "b", "c"], min_selections=1,
                           max_selections=2))
    assert answer_problems(schema, {"tags": "a"}) == [(("value", "tags"), "wrong_type")]
    assert answer_problems(schema, {"tags": ["a", "z", "a", 4]}) == [
        (("value", "tags", 1), "unknown_label"),
        (("value", "tags", 2), "duplicate_label"),
        (("value", "tags", 3), "wrong_type"),
    ]
    assert answer_problems(schema, {"tags": []}) == [(("value", "tags"), "too_few_selections")]
    assert answer_problems(schema, {"tags": ["a", "b", "c"]}) == [
        (("value", "tags"), "too_many_selections")
    ]


@given(st.sets(st.sampled_from("abcdef")))
def test_multi_choice_any_subset_in_any_order_normalizes_to_sorted(subset):
    schema = make_schema(q("multi_choice", "m", labels=list("abcdef")))
    assert schema.validate_answer({"m": sorted(subset, reverse=True)}) == {"m": sorted(subset)}


# ---- rating ---------------------------------------------------------------------------------


def test_rating_defaults_are_integers_one_to_five():
    schema = make_schema(q("rating", "stars"))
    question = schema.question("stars")
    assert isinstance(question, RatingQuestion)
    assert question.points == (1, 2, 3, 4, 5)
    assert schema.validate_answer({"stars": 4}) == {"stars": 4}
    normalized = schema.validate_answer({"stars": 4.0})["stars"]
    assert normalized == 4 and type(normalized) is int
    for value, code in [(0, "out_of_range"), (6, "out_of_range"), (3.5, "off_step"),
                        ("3", "wrong_type"), (True, "wrong_type"), (float("nan"), "wrong_type"),
                        (None, "missing_answer")]:
        assert answer_problems(schema, {"stars": value}) == [(("value", "stars"), code)]


def test_rating_integer_step():
    schema = make_schema(q("rating", "r", min=0, max=10, step=2))
    assert schema.validate_answer({"r": 6}) == {"r": 6}
    assert answer_problems(schema, {"r": 5}) == [(("value", "r"), "off_step")]


def test_rating_fractional_step_snaps():
    schema = make_schema(q("rating", "r", min=0, max=1, step=0.1))
    assert schema.validate_answer({"r": 0.1 + 0.2}) == {"r": 0.3}
    assert schema.validate_answer({"r": 1}) == {"r": 1.0}
    assert answer_problems(schema, {"r": 0.35}) == [(("value", "r"), "off_step")]
    assert schema.question("r").points[:4] == (0.0, 0.1, 0.2, 0.3)


def test_rating_continuous():
    schema = make_schema(q("rating", "r", min=-1, max=1, step=None))
    assert schema.validate_answer({"r": 0.123456}) == {"r": 0.123456}
    assert answer_problems(schema, {"r": 1.01}) == [(("value", "r"), "out_of_range")]
    assert schema.question("r").points is None


@given(st.integers(min_value=-10, max_value=10), st.integers(min_value=1, max_value=20),
       st.integers(min_value=1, max_value=4), st.data())
def test_rating_accepts_exactly_the_points(lo, span, step, data):
    hi = lo + span * step
    schema = make_schema(q("rating", "r", min=lo, max=hi, step=step))
    value = data.draw(st.integers(min_value=lo - 5, max_value=hi + 5))
    if value in schema.question("r").points:
        assert schema.validate_answer({"r": value}) == {"r": value}
    else:
        code = "out_of_range" if not lo <= value <= hi else "off_step"
        assert answer_problems(schema, {"r": value}) == [(("value", "r"), code)]


# ---- text -----------------------------------------------------------------------------------


def test_text_lengths():
    schema = make_schema(q("text", "t", min_length=2, max_length=5))
    assert schema.validate_answer({"t": "héllo"}) == {"t": "héllo"}
    assert answer_problems(schema, {"t": "a"}) == [(("value", "t"), "too_short")]
    assert answer_problems(schema, {"t": "abcdef"}) == [(("value", "t"), "too_long")]
    assert answer_problems(schema, {"t": 5}) == [(("value", "t"), "wrong_type")]


def test_text_default_max_length_is_10000():
    schema = make_schema(q("text", "t"))
    assert schema.validate_answer({"t": ""}) == {"t": ""}
    assert schema.validate_answer({"t": "x" * 10000})
    assert answer_problems(schema, {"t": "x" * 10001}) == [(("value", "t"), "too_long")]


# ---- spans ----------------------------------------------------------------------------------

NER = make_schema(q("spans", "ents", labels=["PER", "ORG"]))
TEXT = {"text": "Ada Lovelace met Babbage"}  # 24 characters


def span(start: int, end: int, label: str = "PER", **extra: Any) -> dict[str, Any]:
    return {"start": start, "end": end, "label": label, **extra}


def test_spans_accepted_and_sorted():
    value = {"ents": [span(17, 24), span(0, 12, text="Ada Lovelace"), span(0, 3, "ORG")]}
    assert NER.validate_answer(value, TEXT) == {
        "ents": [span(0, 3, "ORG"), span(0, 12), span(17, 24)]
    }
    assert NER.validate_answer({"ents": []}, TEXT) == {"ents": []}


def test_spans_errors_have_exact_codes_and_paths():
    value = {
        "ents": [
            span(0, 3),
            span(-1, 3),
            span(5, 5),
            span(20, 25),
            span(0, 3, "LOC"),
            {"start": 0, "label": "PER"},
            {"start": 0, "end": 3, "label": "PER", "score": 0.9},
            span(0, 3),
            span(0, 3, "ORG", text="Bob"),
            span("0", 3.0),
            "PER",
        ]
    }
    assert answer_problems(NER, value, TEXT) == [
        (("value", "ents", 1, "start"), "span_out_of_range"),
        (("value", "ents", 2, "end"), "empty_span"),
        (("value", "ents", 3, "end"), "span_out_of_range"),
        (("value", "ents", 4, "label"), "unknown_label"),
        (("value", "ents", 5, "end"), "missing_field_value"),
        (("value", "ents", 6, "score"), "unknown_field"),
        (("value", "ents", 7), "duplicate_span"),
        (("value", "ents", 8, "text"), "span_text_mismatch"),
        (("value", "ents", 9, "start"), "wrong_type"),
        (("value", "ents", 9, "end"), "wrong_type"),
        (("value", "ents", 10), "wrong_type"),
    ]


def test_spans_without_item_data_skip_the_range_check():
    assert NER.validate_answer({"ents": [span(100, 200)]}) == {"ents": [span(100, 200)]}
    assert answer_problems(NER, {"ents": [span(3, 1)]}) == [
        (("value", "ents", 0, "end"), "empty_span")
    ]


def test_spans_offsets_are_code_points():
    # "😀" is one code point (two UTF-16 units): offsets index Python strings.
    data = {"text": "😀 hi"}
    assert NER.validate_answer({"ents": [span(2, 4, text="hi")]}, data)
    assert answer_problems(NER, {"ents": [span(2, 5)]}, data) == [
        (("value", "ents", 0, "end"), "span_out_of_range")
    ]


def test_spans_source_field():
    schema = make_schema(q("spans", "ents", labels=["PER"], source="body"))
    assert schema.validate_answer({"ents": [span(0, 3)]}, {"body": "Ada"})
    assert answer_problems(schema, {"ents": [span(0, 3)]}, {"text": "Ada"}) == [
        (("value", "ents"), "missing_source")
    ]
    assert answer_problems(schema, {"ents": [span(0, 3)]}, {"body": ["Ada"]}) == [
        (("value", "ents"), "bad_source")
    ]
    assert answer_problems(schema, {"ents": {"start": 0}}) == [(("value", "ents"), "wrong_type")]


def test_spans_overlap_can_be_forbidden():
    allowed = NER
    forbidden = make_schema(q("spans", "ents", labels=["PER", "ORG"], allow_overlap=False))
    value = {"ents": [span(0, 12), span(4, 12, "ORG"), span(12, 16)]}
    assert allowed.validate_answer(value, TEXT)
    assert answer_problems(forbidden, value, TEXT) == [
        (("value", "ents", 1), "overlapping_spans")
    ]
    touching = {"ents": [span(0, 3), span(3, 12)]}
    assert forbidden.validate_answer(touching, TEXT) == touching


@given(st.text(max_size=30), st.data())
def test_spans_valid_iff_inside_text(text, data):
    start = data.draw(st.integers(min_value=-3, max_value=len(text) + 3))
    end = data.draw(st.integers(min_value=-3, max_value=len(text) + 3))
    value = {"ents": [span(start, end)]}
    if 0 <= start < end <= len(text):
        assert NER.validate_answer(value, {"text": text}) == value
    else:
        [(loc, code)] = answer_problems(NER, value, {"text": text})
        assert code in {"span_out_of_range", "empty_span"}
        assert loc[:3] == ("value", "ents", 0)


# ---- boxes ----------------------------------------------------------------------------------

BOXES = make_schema(q("boxes", "objs", labels=["car", "person"]))
PIXEL = make_schema(q("boxes", "objs", labels=["car"], coordinates="pixel"))
IMAGE = {"image": "https://example.org/a.jpg", "width": 640, "height": 480}


def box(x: float, y: float, w: float, h: float, label: str = "car") -> dict[str, Any]:
    return {"x": x, "y": y, "w": w, "h": h, "label": label}


def test_relative_boxes_accepted():
    value = {"objs": [box(0.1, 0.2, 0.5, 0.5), box(0, 0, 1, 1, "person")]}
    assert BOXES.validate_answer(value) == value
    # float noise from UI math at the right edge is tolerated
    assert BOXES.validate_answer({"objs": [box(0.7, 0.0, 0.1 + 0.2, 0.5)]})


def test_relative_box_errors():
    value = {
        "objs": [
            box(0.5, 0.5, 0.6, 0.1),
            box(0.5, 0.5, 0.1, 0.6),
            box(-0.1, 0.5, 0.1, 0.1),
            box(0.1, 0.1, 0, 0.1),
            box(0.1, 0.1, 0.1, -1),
            box(0.1, 0.1, 0.1, 0.1, "tree"),
            {"x": 0.1, "y": 0.1, "w": 0.1, "label": "car"},
            {"x": "0.1", "y": None, "w": 0.1, "h": 0.1, "label": "car"},
            box(0.1, 0.2, 0.5, 0.5),
            box(0.1, 0.2, 0.5, 0.5),
        ]
    }
    assert answer_problems(BOXES, value) == [
        (("value", "objs", 0, "w"), "box_out_of_bounds"),
        (("value", "objs", 1, "h"), "box_out_of_bounds"),
        (("value", "objs", 2, "x"), "box_out_of_bounds"),
        (("value", "objs", 3, "w"), "degenerate_box"),
        (("value", "objs", 4, "h"), "degenerate_box"),
        (("value", "objs", 5, "label"), "unknown_label"),
        (("value", "objs", 6, "h"), "missing_field_value"),
        (("value", "objs", 7, "x"), "wrong_type"),
        (("value", "objs", 7, "y"), "wrong_type"),
        (("value", "objs", 9), "duplicate_box"),
    ]


def test_pixel_boxes_use_item_size():
    assert PIXEL.validate_answer({"objs": [box(600, 400, 40, 80)]}, IMAGE)
    assert answer_problems(PIXEL, {"objs": [box(600, 400, 41, 80)]}, IMAGE) == [
        (("value", "objs", 0, "w"), "box_out_of_bounds")
    ]
    assert answer_problems(PIXEL, {"objs": [box(0, 400, 40, 81)]}, IMAGE) == [
        (("value", "objs", 0, "h"), "box_out_of_bounds")
    ]
    # without item data the upper bound is unknown, so only the sign is checked
    assert PIXEL.validate_answer({"objs": [box(6000, 4000, 40, 80)]})
    assert answer_problems(PIXEL, {"objs": [box(-1, 0, 40, 80)]}) == [
        (("value", "objs", 0, "x"), "box_out_of_bounds")
    ]


def test_pixel_boxes_need_the_image_size():
    value = {"objs": [box(1, 1, 1, 1)]}
    assert answer_problems(PIXEL, value, {"image": "a.jpg"}) == [
        (("value", "objs"), "missing_source"),
        (("value", "objs"), "missing_source"),
    ]
    assert answer_problems(PIXEL, value, {"image": "a.jpg", "width": 0, "height": "480"}) == [
        (("value", "objs"), "bad_source"),
        (("value", "objs"), "bad_source"),
    ]
    custom = make_schema(q("boxes", "objs", labels=["car"], coordinates="pixel",
                           width_field="img_w", height_field="img_h"))
    assert custom.validate_answer(value, {"img_w": 2, "img_h": 2})
    assert isinstance(custom.question("objs"), BoxesQuestion)


@given(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5), st.floats(-0.5, 1.5), st.floats(-0.5, 1.5))
def test_relative_box_valid_iff_inside_unit_square(x, y, w, h):
    value = {"objs": [box(x, y, w, h)]}
    inside = w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9
    if inside:
        assert BOXES.validate_answer(value) == value
    else:
        [(_loc, code)] = answer_problems(BOXES, value)
        assert code in {"box_out_of_bounds", "degenerate_box"}


# ---- ranking --------------------------------------------------------------------------------

FIXED = make_schema(q("ranking", "rank", candidates=["a", "b", "c"]))
FROM_ITEM = make_schema(q("ranking", "pref"))
TIES = make_schema(q("ranking", "rank", candidates=["a", "b", "c"], allow_ties=True))


def test_fixed_ranking():
    assert FIXED.validate_answer({"rank": ["c", "a", "b"]}) == {"rank": ["c", "a", "b"]}
    assert answer_problems(FIXED, {"rank": ["c", "a"]}) == [
        (("value", "rank"), "ranking_not_permutation")
    ]
    assert answer_problems(FIXED, {"rank": ["a", "a", "b", "c"]}) == [
        (("value", "rank", 1), "ranking_not_permutation")
    ]
    assert answer_problems(FIXED, {"rank": ["a", "b", "c", "d"]}) == [
        (("value", "rank", 3), "ranking_not_permutation")
    ]
    # a repeated id hides a missing one: both are reported
    assert answer_problems(FIXED, {"rank": ["a", "b", "b"]}) == [
        (("value", "rank", 2), "ranking_not_permutation"),
        (("value", "rank"), "ranking_not_permutation"),
    ]
    assert answer_problems(FIXED, {"rank": "abc"}) == [(("value", "rank"), "wrong_type")]
    assert answer_problems(FIXED, {"rank": ["a", None, "b", "c"]}) == [
        (("value", "rank", 1), "wrong_type")
    ]


def test_ranking_candidates_from_item_objects_with_ids():
    data = {"prompt": "hi", "responses": [{"id": "m1", "text": "A"}, {"id": "m2", "text": "B"}]}
    assert FROM_ITEM.validate_answer({"pref": ["m2", "m1"]}, data) == {"pref": ["m2", "m1"]}
    assert answer_problems(FROM_ITEM, {"pref": ["m2", "m3"]}, data) == [
        (("value", "pref", 1), "ranking_not_permutation"),
        (("value", "pref"), "ranking_not_permutation"),
    ]


def test_ranking_candidates_from_item_indexes_and_int_ids():
    plain = {"responses": ["first answer", "second answer"]}
    assert FROM_ITEM.validate_answer({"pref": ["1", "0"]}, plain) == {"pref": ["1", "0"]}
    assert FROM_ITEM.validate_answer({"pref": [1, 0]}, plain) == {"pref": ["1", "0"]}
    int_ids = {"responses": [{"id": 7}, {"id": 9}]}
    assert FROM_ITEM.validate_answer({"pref": [9, "7"]}, int_ids) == {"pref": ["9", "7"]}
    question = FROM_ITEM.question("pref")
    assert isinstance(question, RankingQuestion)
    assert question.get_candidates(int_ids) == ("7", "9")
    assert question.get_candidates(None) is None


def test_ranking_without_item_data_checks_only_duplicates():
    assert FROM_ITEM.validate_answer({"pref": ["x", "y"]}) == {"pref": ["x", "y"]}
    assert answer_problems(FROM_ITEM, {"pref": ["x", "x"]}) == [
        (("value", "pref", 1), "ranking_not_permutation")
    ]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({}, "missing_source"),
        ({"responses": "ab"}, "bad_source"),
        ({"responses": ["only one"]}, "bad_source"),
        ({"responses": [{"id": "a"}, {"id": "a"}]}, "bad_source"),
    ],
)
def test_ranking_bad_item_candidates(data, code):
    assert answer_problems(FROM_ITEM, {"pref": ["0", "1"]}, data) == [(("value", "pref"), code)]
    with pytest.raises(GoldlabelError):
        FROM_ITEM.question("pref").get_candidates(data)


def test_ranking_with_ties():
    assert TIES.validate_answer({"rank": [["b"], ["c", "a"]]}) == {"rank": [["b"], ["a", "c"]]}
    assert TIES.validate_answer({"rank": [["a", "b", "c"]]}) == {"rank": [["a", "b", "c"]]}
    assert answer_problems(TIES, {"rank": ["a", "b", "c"]}) == [
        (("value", "rank", 0), "wrong_type"),
        (("value", "rank", 1), "wrong_type"),
        (("value", "rank", 2), "wrong_type"),
        (("value", "rank"), "ranking_not_permutation"),
    ]
    assert answer_problems(TIES, {"rank": [["a"], [], ["b", "c"]]}) == [
        (("value", "rank", 1), "empty_group")
    ]
    assert answer_problems(TIES, {"rank": [["a", "b"], ["b", "c"]]}) == [
        (("value", "rank", 1, 0), "ranking_not_permutation")
    ]


def test_pairwise_is_a_ranking_of_two():
    schema = make_schema(q("ranking", "better", candidates=["A", "B"]))
    assert schema.validate_answer({"better": ["B", "A"]}) == {"better": ["B", "A"]}
    assert answer_problems(schema, {"better": ["B"]}) == [
        (("value", "better"), "ranking_not_permutation")
    ]


CANDIDATES = [f"c{i}" for i in range(6)]
SIX = make_schema(q("ranking", "r", candidates=CANDIDATES))


@given(st.permutations(CANDIDATES))
def test_any_permutation_validates(order):
    assert SIX.validate_answer({"r": order}) == {"r": order}


@given(st.lists(st.sampled_from([*CANDIDATES, "other"]), max_size=8))
def test_any_non_permutation_fails(order):
    if sorted(order) == sorted(CANDIDATES):
        assert SIX.validate_answer({"r": order}) == {"r": order}
        return
    codes = {code for _loc, code in answer_problems(SIX, {"r": order})}
    assert codes == {"ranking_not_permutation"}


@given(st.permutations(CANDIDATES), st.data())
def test_any_grouping_of_a_permutation_validates_with_ties(order, data):
    schema = make_schema(q("ranking", "r", candidates=CANDIDATES, allow_ties=True))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(order) - 1))))
    groups = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    assert schema.validate_answer({"r": groups}) == {"r": [sorted(g) for g in groups]}


# ---- item data ------------------------------------------------------------------------------


def test_validate_item_data():
    schema = make_schema(
        q("choice", "c", labels=["a"]),
        q("spans", "s", labels=["PER"]),
        q("boxes", "b", labels=["car"], coordinates="pixel"),
        q("ranking", "r"),
    )
    schema.validate_item_data({"text": "t", "image": "https://cdn.example/u.jpg", "width": 1,
                               "height": 2, "responses": ["x", "y"]})
    # The image source rule the workspace applies (media_sources); http: only for listed hosts.
    good = {"text": "t", "width": 1, "height": 2, "responses": ["x", "y"]}
    with pytest.raises(GoldlabelError) as info:
        schema.validate_item_data({**good, "image": "http://images.lan/u.jpg"})
    assert problems(info.value) == [(("data", "image"), "http_host_not_allowed")]
    schema.validate_item_data({**good, "image": "http://images.lan/u.jpg"},
                              http_hosts=["images.lan"])
    with pytest.raises(GoldlabelError) as info:
        schema.validate_item_data({"text": 3, "width": -1, "responses": ["x"]})
    assert problems(info.value) == [
        (("data", "text"), "bad_source"),
        (("data", "image"), "missing_source"),
        (("data", "width"), "bad_source"),
        (("data", "height"), "missing_source"),
        (("data", "responses"), "bad_source"),
    ]
    with pytest.raises(GoldlabelError) as info:
        schema.validate_item_data([], loc_prefix=("items", 4, "data"))
    assert problems(info.value) == [(("items", 4, "data"), "wrong_type")]
    make_schema(q("text", "t")).validate_item_data({})


# ---- whole answers and docs -----------------------------------------------------------------


def test_errors_across_questions_are_collected_together():
    schema = LabelSchema.parse(RICH_SCHEMA)
    value = {"c": "z", "m": [], "r": 0.3, "cont": 2, "t": "ab", "s": [span(0, 9)],
             "b": [box(0, 0, 0, 1)], "k": [["x"]], "pair": ["0", "0"]}
    item = {"body": "short", "url": "i.png", "w": 10, "h": 10, "answers": ["p", "q"]}
    assert answer_problems(schema, value, item) == [
        (("value", "c"), "unknown_label"),
        (("value", "m"), "too_few_selections"),
        (("value", "r"), "off_step"),
        (("value", "cont"), "out_of_range"),
        (("value", "t"), "too_short"),
        (("value", "s", 0, "end"), "span_out_of_range"),
        (("value", "b", 0, "w"), "degenerate_box"),
        (("value", "k"), "ranking_not_permutation"),
        (("value", "pair", 1), "ranking_not_permutation"),
        (("value", "pair"), "ranking_not_permutation"),
    ]


def test_error_messages_are_specific():
    with pytest.raises(GoldlabelError) as info:
        LabelSchema.parse(MINIMAL).validate_answer({"sentiment": "neutral"})
    message = info.value.errors[0].message
    assert "'neutral'" in message and "'positive'" in message
    assert "value.sentiment" in str(info.value)


def test_every_error_code_is_documented():
    doc = DOC.read_text(encoding="utf-8").split("### Error codes", 1)[1]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", doc, flags=re.MULTILINE))
    assert documented == set(ERROR_CODES)

