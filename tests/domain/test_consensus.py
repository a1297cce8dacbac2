"""The placeholder consensus: majority vote, tie raises the target, tie at max goes to review."""

from __future__ import annotations

from goldlabel.domain.consensus import decide_item, majority_vote


def test_majority_vote_clear_winner():
    q = majority_vote("s", ["a", "b", "a"])
    assert q.is_decided and q.value == "a"
    assert abs(q.confidence - 2 / 3) < 1e-9
    assert q.contributions == {"a": 2, "b": 1}


def test_majority_vote_tie_is_undecided():
    q = majority_vote("s", ["a", "b"])
    assert not q.is_decided and q.value is None
    assert q.confidence == 0.5
    q3 = majority_vote("s", ["a", "b", "c", "c", "a"])
    assert not q3.is_decided and q3.value is None


def test_majority_vote_ignores_missing_and_empty():
    assert majority_vote("s", [None, "b", None]).value == "b"
    empty = majority_vote("s", [None, None])
    assert not empty.is_decided and empty.value is None and empty.confidence is None


def test_open_until_target():
    d = decide_item([{"s": "a"}], ["s"], target_overlap=2, overlap_max=3)
    assert d.status == "open" and d.target_overlap == 2


def test_final_at_target_with_agreement():
    d = decide_item([{"s": "a"}, {"s": "a"}], ["s"], target_overlap=2, overlap_max=3)
    assert d.status == "final" and d.target_overlap == 2
    assert d.questions[0].value == "a"


def test_tie_raises_target_by_one():
    d = decide_item([{"s": "a"}, {"s": "b"}], ["s"], target_overlap=2, overlap_max=4)
    assert d.status == "open" and d.target_overlap == 3
    d2 = decide_item([{"s": "a"}, {"s": "b"}, {"s": "a"}], ["s"], target_overlap=3, overlap_max=4)
    assert d2.status == "final" and d2.questions[0].value == "a"


def test_tie_at_max_needs_review():
    d = decide_item([{"s": "a"}, {"s": "b"}], ["s"], target_overlap=2, overlap_max=2)
    assert d.status == "needs_review"
    d4 = decide_item([{"s": x} for x in "abab"], ["s"], target_overlap=4, overlap_max=4)
    assert d4.status == "needs_review"


def test_every_choice_question_must_be_decided():
    values = [{"s": "a", "t": "x"}, {"s": "a", "t": "y"}]
    d = decide_item(values, ["s", "t"], target_overlap=2, overlap_max=3)
    assert d.status == "open" and d.target_overlap == 3
    assert [q.is_decided for q in d.questions] == [True, False]


def test_no_choice_questions_final_at_target():
    d = decide_item([{"text": "x"}], [], target_overlap=1, overlap_max=1)
    assert d.status == "final" and d.questions == ()
