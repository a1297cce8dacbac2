"""Label schema edits without a database: which changes are safe, and which stored values a
new version breaks (goldlabel.domain.label_schema.changes)."""

from __future__ import annotations

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.domain.label_schema.changes import Break, compare_schemas, find_breaks

BASE = [
    {"name": "s", "kind": "choice", "labels": ["pos", "neg", "neu"]},
    {"name": "tags", "kind": "multi_choice", "labels": ["a", "b"]},
    {"name": "ents", "kind": "spans", "labels": ["PER", "ORG"]},
    {"name": "r", "kind": "rating", "min": 1, "max": 5, "required": False},
]


def schema(*questions) -> LabelSchema:
    return LabelSchema.parse({"questions": list(questions)})


def edit(index: int, **changes) -> list[dict]:
    return [({**q, **changes} if i == index else q) for i, q in enumerate(BASE)]


def test_additions_and_cosmetic_changes_are_safe():
    old = schema(*BASE)
    grown = edit(0, labels=["neu", "pos", "neg", "mixed"], title="Sentiment", required=False)
    change = compare_schemas(old, schema(*grown, {"name": "note", "kind": "text"}))
    assert change.is_safe
    assert change.added_questions == ("note",) and change.added_labels == {"s": ("mixed",)}
    assert compare_schemas(old, old).is_safe


def test_removed_labels_are_found_in_every_labeled_kind():
    old = schema(*BASE)
    new = schema(BASE[0] | {"labels": ["pos", "neg"]}, BASE[1] | {"labels": ["a"]},
                 BASE[2] | {"labels": ["PER"]}, BASE[3])
    change = compare_schemas(old, new)
    assert not change.is_safe and change.removed_labels == {"s": ("neu",), "tags": ("b",), "ents": ("ORG",)}
    value = {"s": "neu", "tags": ["a", "b"],
             "ents": [{"start": 0, "end": 3, "label": "ORG"}, {"start": 4, "end": 6, "label": "ORG"}], "r": 2}
    assert find_breaks(change, value) == [
        Break("s", "label_removed", label="neu"), Break("tags", "label_removed", label="b"),
        Break("ents", "label_removed", label="ORG"),
    ]
    assert find_breaks(change, {"s": "pos", "tags": ["a"], "ents": []}) == []


def test_removed_questions_kind_and_option_changes():
    old = schema(*BASE)
    new = schema(BASE[0] | {"kind": "multi_choice"}, BASE[1], BASE[2] | {"allow_overlap": False})  # no r
    change = compare_schemas(old, new)
    assert change.removed_questions == ("r",) and change.kind_changed == ("s",)
    assert change.options_changed == ("ents",)
    overlapping = [{"start": 0, "end": 5, "label": "PER"}, {"start": 2, "end": 6, "label": "ORG"}]
    assert find_breaks(change, {"s": "pos", "r": 3, "ents": overlapping, "tags": None}) == [
        Break("s", "kind_changed"), Break("r", "question_removed"), Break("ents", "invalid", code="overlapping_spans"),
    ]
    # A null or absent value breaks nothing; a narrowed rating range breaks only ratings outside.
    narrowed = schema(*BASE[:3], BASE[3] | {"max": 3})
    c2 = compare_schemas(old, narrowed)
    assert find_breaks(c2, {"r": None}) == [] and find_breaks(c2, {"r": 3}) == []
    assert find_breaks(c2, {"r": 5}) == [Break("r", "invalid", code="out_of_range")]
