"""Consensus of the non-choice kinds, per item and in the vectorized re-fit: known answers, no
database."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.quality import consensus as ck

SCHEMA = LabelSchema.parse({"questions": [
    {"name": "topics", "kind": "multi_choice", "labels": ["sport", "politics", "tech"], "max_selections": 2},
    {"name": "fluency", "kind": "rating", "min": 1, "max": 5},
    {"name": "score", "kind": "rating", "min": 0, "max": 1, "step": None},
    {"name": "summary", "kind": "text"},
    {"name": "preference", "kind": "ranking", "candidates": ["a", "b", "c"]},
    {"name": "tied", "kind": "ranking", "candidates": ["a", "b", "c"], "allow_ties": True},
    {"name": "entities", "kind": "spans", "labels": ["PER", "ORG"]},
    {"name": "objects", "kind": "boxes", "labels": ["car", "person"]},
]})
Q = {q.name: q for q in SCHEMA.questions}
DATA = {"text": "Ada Lovelace met Babbage at Cambridge", "image": "https://img/1.png"}
# one-coin posteriors of n agreeing answers at the default accuracy 0.7
AGREE = [0.7, 0.845, 0.927, 0.967]


def valid(name, value):
    assert SCHEMA.validate_answer({name: value}, DATA, partial=True) == {name: value}


# ---------------------------------------------------------------- multi_choice


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_multi_choice_agreement_matches_the_choice_posterior(n):
    value, conf = ck.multi_choice_consensus(Q["topics"], [["tech", "sport"]] * n, 0.7)
    assert value == ["sport", "tech"]
    assert conf == pytest.approx(AGREE[n - 1], abs=1e-3)
    valid("topics", value)


def test_multi_choice_split_label_is_uncertain_and_max_selections_holds():
    value, conf = ck.multi_choice_consensus(Q["topics"], [["sport", "politics"], ["sport"]], 0.7)
    assert value == ["sport", "politics"] and conf == pytest.approx(0.5)
    # three labels with P >= 0.5 but max_selections = 2: the two most probable stay, and the
    # dropped label's 1 - P (just under 0.5) is the confidence
    value, conf = ck.multi_choice_consensus(
        Q["topics"], [["sport", "politics"], ["politics", "tech"], ["sport", "tech"]], [0.7, 0.8, 0.9])
    assert value == ["sport", "tech"]
    assert conf == pytest.approx(0.491, abs=1e-3)
    valid("topics", value)


def test_multi_choice_empty_answers_agree_on_nothing():
    value, conf = ck.multi_choice_consensus(Q["topics"], [[], [], []], 0.7)
    assert value == [] and conf == pytest.approx(AGREE[2], abs=1e-3)


def test_multi_choice_learned_accuracy_outweighs_two_weak_annotators():
    value, _ = ck.multi_choice_consensus(Q["topics"], [["tech"], ["sport"], ["sport"]], [0.99, 0.6, 0.6])
    assert value == ["tech"]


# ---------------------------------------------------------------- rating


def test_rating_agreement_grows_confidence_and_disagreement_does_not():
    confs = [ck.rating_consensus(Q["fluency"], [4] * n)[1] for n in range(1, 5)]
    assert all(a < b for a, b in pairwise(confs))
    assert confs[2] < 0.95 <= confs[3]  # four agreeing answers reach the default target
    value, conf = ck.rating_consensus(Q["fluency"], [2, 5, 3, 4])
    assert value in (3, 4) and conf < 0.6
    assert isinstance(value, int)
    valid("fluency", value)


def test_rating_value_is_snapped_to_the_grid_and_weighted():
    assert ck.rating_consensus(Q["fluency"], [4, 4, 5])[0] == 4
    assert ck.rating_consensus(Q["fluency"], [4, 5], weights=[1, 3])[0] == 5
    value, conf = ck.rating_consensus(Q["score"], [0.31, 0.33, 0.32])
    assert value == pytest.approx(0.32) and conf > 0.9  # tolerance 0.05 on a continuous scale
    valid("score", value)


def test_rating_tolerance_setting_widens_the_interval():
    narrow = ck.rating_consensus(Q["fluency"], [3, 4, 3])[1]
    wide = ck.rating_consensus(Q["fluency"], [3, 4, 3], {"rating_tolerance": 1.0})[1]
    assert wide > narrow
    assert ck.rating_tolerance(Q["fluency"]) == 0.5 and ck.rating_tolerance(Q["score"]) == pytest.approx(0.05)


# ---------------------------------------------------------------- text


def test_text_medoid_and_agreement():
    texts = ["The customer wants a refund.", "the customer wants a refund", "Customer asks about shipping"]
    value, conf = ck.text_consensus(texts, 0.7)
    assert value in texts[:2]
    assert conf == pytest.approx(0.7, abs=1e-3)  # two agree, one does not: one net vote
    value, conf = ck.text_consensus(["same"] * 4, 0.7)
    assert value == "same" and conf == pytest.approx(AGREE[3], abs=1e-3)
    assert ck.text_consensus(["", ""], 0.7) == ("", pytest.approx(AGREE[1], abs=1e-3))
    assert ck.text_consensus(["alpha", "omega"], 0.7)[1] == pytest.approx(0.5)


# ---------------------------------------------------------------- ranking


def test_ranking_agreement_and_weakest_pair():
    value, conf = ck.ranking_consensus(Q["preference"], [["b", "a", "c"]] * 3, 0.7)
    assert value == ["b", "a", "c"] and conf == pytest.approx(AGREE[2], abs=1e-3)
    valid("preference", value)
    value, conf = ck.ranking_consensus(Q["preference"], [["a", "b", "c"], ["b", "a", "c"], ["a", "b", "c"]], 0.7)
    assert value == ["a", "b", "c"]
    assert conf == pytest.approx(0.7, abs=1e-3)  # a > b by 2 to 1; c is last in all three


def test_ranking_with_ties():
    value, conf = ck.ranking_consensus(Q["tied"], [[["b"], ["a", "c"]], [["b"], ["a"], ["c"]]], 0.7)
    assert value[0] == ["b"] and sorted(c for tier in value for c in tier) == ["a", "b", "c"]
    assert conf == pytest.approx(0.7, abs=1e-3)  # a vs c: one vote, one tie
    valid("tied", value)


# ---------------------------------------------------------------- spans


def test_spans_agreement_and_boundary_dispute():
    ada = {"start": 0, "end": 12, "label": "PER"}
    value, conf = ck.spans_consensus(Q["entities"], [[ada]] * 3, 0.7)
    assert value == [ada]
    three_class = 0.7**3 / (0.7**3 + 2 * 0.15**3)  # outside / PER / ORG, all three say PER
    assert conf == pytest.approx(three_class, abs=1e-3)
    valid("entities", value)
    # one annotator marks only "Ada": the disputed characters lower the confidence
    short = {"start": 0, "end": 3, "label": "PER"}
    value, disputed = ck.spans_consensus(Q["entities"], [[ada], [ada], [short]], 0.7)
    assert value == [ada] and disputed < conf
    # a span only one of three marked is dropped
    babbage = {"start": 17, "end": 24, "label": "PER"}
    value, _ = ck.spans_consensus(Q["entities"], [[ada, babbage], [ada], [ada]], 0.7)
    assert value == [ada]


def test_spans_nothing_marked():
    value, conf = ck.spans_consensus(Q["entities"], [[], []], 0.7)
    assert value == [] and conf == pytest.approx(0.7**2 / (0.7**2 + 2 * 0.15**2), abs=1e-3)


def test_spans_keep_separate_spans_and_labels():
    a = [{"start": 0, "end": 12, "label": "PER"}, {"start": 28, "end": 37, "label": "ORG"}]
    value, _ = ck.spans_consensus(Q["entities"], [a, a], 0.7)
    assert value == a
    valid("entities", value)


# ---------------------------------------------------------------- boxes


def test_boxes_fuse_matching_boxes_and_drop_strays():
    car = {"x": 0.1, "y": 0.1, "w": 0.3, "h": 0.3, "label": "car"}
    car2 = {"x": 0.12, "y": 0.1, "w": 0.3, "h": 0.32, "label": "car"}
    stray = {"x": 0.6, "y": 0.6, "w": 0.2, "h": 0.2, "label": "person"}
    value, conf = ck.boxes_consensus(Q["objects"], [[car], [car2], [car, stray]], 0.7)
    assert len(value) == 1 and value[0]["label"] == "car"
    assert value[0]["x"] == pytest.approx((0.1 + 0.12 + 0.1) / 3)
    assert conf == pytest.approx(0.7, abs=1e-3)  # the stray: one drew it, two did not
    valid("objects", value)
    value, conf = ck.boxes_consensus(Q["objects"], [[car]] * 4, 0.7)
    assert value == [car] and conf == pytest.approx(AGREE[3], abs=1e-3)


def test_boxes_nobody_drew_anything():
    assert ck.boxes_consensus(Q["objects"], [[], [], []], 0.7) == ([], pytest.approx(AGREE[2], abs=1e-3))


def test_consensus_for_dispatches_every_kind():
    with pytest.raises(ValueError):
        ck.consensus_for(LabelSchema.parse({"questions": [
            {"name": "c", "kind": "choice", "labels": ["x"]}]}).questions[0], ["x"], 0.7)


# ---------------------------------------------------------------- re-fit (vectorized)


def _answers(per_item):
    item, annotator, values = [], [], []
    for i, answers in enumerate(per_item):
        for j, v in enumerate(answers):
            item.append(100 + i)
            annotator.append(7 + j)
            values.append(v)
    return np.array(item), np.array(annotator), values


@pytest.mark.parametrize("name, per_item, expected", [
    ("topics", [[["tech"]] * 3, [["sport"], ["sport"], []], [[], [], []]], [["tech"], ["sport"], []]),
    ("fluency", [[4, 4, 4], [1, 5, 3], [2, 2, 2]], [4, 3, 2]),
    ("summary", [["a b c", "a b c", "x"], ["q", "q", "q"], ["hello", "hello world", "hello"]],
     ["a b c", "q", "hello"]),
    ("preference", [[["a", "b", "c"]] * 3, [["c", "b", "a"]] * 3, [["b", "a", "c"]] * 2 + [["a", "b", "c"]]],
     [["a", "b", "c"], ["c", "b", "a"], ["b", "a", "c"]]),
    ("entities", [[[{"start": 0, "end": 3, "label": "PER"}]] * 3, [[], [], []],
                  [[{"start": 4, "end": 12, "label": "ORG"}]] * 2 + [[]]],
     [[{"start": 0, "end": 3, "label": "PER"}], [], [{"start": 4, "end": 12, "label": "ORG"}]]),
])
def test_refit_values_per_item(name, per_item, expected):
    item, annotator, values = _answers(per_item)
    fit = ck.refit_question(Q[name], item, annotator, values, default_accuracy=0.7)
    assert fit.item_ids.tolist() == [100, 101, 102]
    assert fit.values == expected
    assert np.all((fit.confidences > 0) & (fit.confidences <= 1))
    for v in fit.values:
        valid(name, v)


def test_refit_boxes_and_confidences_order():
    car = {"x": 0.1, "y": 0.1, "w": 0.3, "h": 0.3, "label": "car"}
    far = {"x": 0.6, "y": 0.6, "w": 0.3, "h": 0.3, "label": "person"}
    per_item = [[[car]] * 4, [[car], [], [], []], [[], [], [], []], [[car, far]] * 4]
    item, annotator, values = _answers(per_item)
    fit = ck.refit_question(Q["objects"], item, annotator, values, default_accuracy=0.7)
    assert fit.values[0] == [car] and fit.values[1] == [] and fit.values[2] == []
    assert len(fit.values[3]) == 2
    assert fit.confidences[0] > fit.confidences[1]
    for v in fit.values:
        valid("objects", v)


def test_refit_rating_agreement_beats_disagreement_and_stores_no_skills():
    item, annotator, values = _answers([[4, 4, 4, 4], [1, 5, 2, 4]])
    fit = ck.refit_question(Q["fluency"], item, annotator, values)
    assert fit.confidences[0] > 0.95 > fit.confidences[1]
    assert fit.skills is None and fit.method == "robust_rating"


def test_refit_learns_skills_for_the_per_answer_path():
    per_item = [[["tech"], ["tech"], ["sport"]] for _ in range(20)]
    item, annotator, values = _answers(per_item)
    fit = ck.refit_question(Q["topics"], item, annotator, values, now=5)
    by_annotator = {s["annotator_id"]: s for s in fit.skills}
    assert by_annotator[9]["accuracy"] < by_annotator[7]["accuracy"]
    assert by_annotator[7]["n_answers"] == 20 and by_annotator[7]["updated_at"] == 5


def test_single_answers_and_unmatched_boxes():
    # one answer: it is the consensus, at the default accuracy
    assert ck.text_consensus(["only one"], 0.7) == ("only one", pytest.approx(0.7))
    car = {"x": 0.1, "y": 0.1, "w": 0.3, "h": 0.3, "label": "car"}
    far = {"x": 0.6, "y": 0.6, "w": 0.3, "h": 0.3, "label": "car"}
    assert ck.boxes_consensus(Q["objects"], [[car]], 0.7) == ([car], pytest.approx(0.7))
    value, conf = ck.boxes_consensus(Q["objects"], [[car], [far]], 0.7)
    assert value == [car, far] and conf == pytest.approx(0.5)  # P = 0.5 is kept, as for labels
    # the re-fit with one answer per item, and with boxes that never match
    item, annotator, values = _answers([["x"], ["y"]])
    fit = ck.refit_question(Q["summary"], item, annotator, values)
    assert fit.values == ["x", "y"] and fit.confidences == pytest.approx([0.7, 0.7])
    item, annotator, values = _answers([[[car]], [[far], []]])
    fit = ck.refit_question(Q["objects"], item, annotator, values)
    assert fit.values == [[car], [far]]
    assert fit.confidences == pytest.approx([0.7, 0.5])
