"""Chat transcripts (domain/chat.py) and questions about their turns, without a database."""

from __future__ import annotations

import pytest

from goldlabel.domain.chat import check_messages
from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.label_schema import LabelSchema

TURNS = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "name": "m1"}]


def codes(data, turns=()):
    return [(e.code, e.loc) for e in check_messages(data, turns_asked=turns)]


def test_a_well_formed_transcript_and_an_item_without_one_pass():
    assert codes({"messages": TURNS}) == []
    assert codes({"text": "no chat here"}) == []


@pytest.mark.parametrize(("messages", "code", "loc"), [
    ("Hi", "bad_messages", ("data", "messages")),
    ([], "bad_messages", ("data", "messages")),
    ([{"role": "user", "content": "x"}] * 1001, "bad_messages", ("data", "messages")),
    (["Hi"], "bad_turn", ("data", "messages", 0)),
    ([{"role": "user"}], "bad_turn", ("data", "messages", 0)),
    ([{"role": "user", "content": "x", "html": "<b>"}], "bad_turn", ("data", "messages", 0)),
    ([{"role": "robot", "content": "x"}], "bad_turn_role", ("data", "messages", 0, "role")),
    ([{"role": "user", "content": None}], "bad_turn_content", ("data", "messages", 0, "content")),
    ([{"role": "user", "content": "x", "name": 7}], "bad_turn_name", ("data", "messages", 0, "name")),
])
def test_malformed_transcripts_get_a_stable_code_at_the_turn(messages, code, loc):
    assert codes({"messages": messages}) == [(code, loc)]


def test_turns_asked_must_exist_counting_from_either_end():
    assert codes({"messages": TURNS}, turns=(0, 1, -1, -2)) == []
    assert codes({"messages": TURNS}, turns=(2,)) == [("missing_turn", ("data", "messages"))]
    assert codes({"messages": TURNS}, turns=(-3,)) == [("missing_turn", ("data", "messages"))]
    assert codes({"text": "x"}, turns=(-1,)) == [("missing_turn", ("data", "messages"))]


def test_turn_is_an_option_of_the_per_turn_kinds_only():
    schema = LabelSchema.parse({"questions": [
        {"name": "r", "kind": "rating", "turn": -1}, {"name": "t", "kind": "text", "turn": 0},
        {"name": "c", "kind": "choice", "labels": ["a", "b"]}]})
    assert schema.turns_asked == (-1, 0)
    assert LabelSchema.parse(schema.to_json()) == schema
    assert "turn" not in schema.to_json()["questions"][2]  # unset: not written
    with pytest.raises(GoldlabelError) as caught:
        LabelSchema.parse({"questions": [{"name": "k", "kind": "ranking", "turn": 1},
                                         {"name": "r", "kind": "rating", "turn": 5000}]})
    assert [(e.code, e.loc[-1]) for e in caught.value.errors] == [("unknown_option", "turn"), ("bad_option", "turn")]
