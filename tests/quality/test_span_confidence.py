"""A re-fit's span confidence is not certainty from two agreeing answers: the learned span
accuracies are shrunk toward the default, as choice skills are (it used to say 1.000)."""

from __future__ import annotations

import numpy as np
import pytest

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.quality import consensus as ck

QUESTION = LabelSchema.parse({"questions": [{"name": "e", "kind": "spans", "labels": ["PER"]}]}).questions[0]
ADA = {"start": 0, "end": 12, "label": "PER"}


def test_two_agreeing_answers_on_one_item_are_not_certain():
    fit = ck.refit_question(QUESTION, np.array([7, 7]), np.array([1, 2]), [[ADA], [ADA]])
    _, per_answer = ck.spans_consensus(QUESTION, [[ADA], [ADA]], 0.7)
    assert fit.values == [[ADA]]
    assert fit.confidences[0] < 0.9
    assert fit.confidences[0] == pytest.approx(per_answer, abs=0.02)


def test_agreement_over_many_items_earns_more_confidence_but_not_one():
    items = np.repeat(np.arange(40), 2)
    annotators = np.tile([1, 2], 40)
    fit = ck.refit_question(QUESTION, items, annotators, [[ADA]] * 80)
    few = ck.refit_question(QUESTION, items[:2], annotators[:2], [[ADA]] * 2)
    assert few.confidences[0] < fit.confidences[0] < 0.99
    assert all(0.7 < s["accuracy"] < 0.9 for s in fit.skills)
