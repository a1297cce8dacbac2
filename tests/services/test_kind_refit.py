"""The re-fit's per-kind step (services.refit.refit_kinds): only questions with answers are
re-fitted, and a project's pooled knowledge of unknown annotators sets their accuracy."""

from __future__ import annotations

import types

import numpy as np
import pytest

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.services.refit import refit_kinds

SCHEMA = LabelSchema.parse({"questions": [
    {"name": "fluency", "kind": "rating", "min": 1, "max": 5},
    {"name": "summary", "kind": "text"},
    {"name": "label", "kind": "choice", "labels": ["a", "b"]},
]})


def test_refit_kinds_skips_unanswered_questions():
    loaded = {"fluency": (np.array([100, 100]), np.array([7, 8]), [3, 3])}
    fits = refit_kinds(SCHEMA, loaded, default_accuracy=0.7, settings={}, now=0)
    assert [f.question for f in fits] == ["fluency"]


def test_pooled_accuracy_replaces_the_default():
    loaded = {"summary": (np.array([100]), np.array([7]), ["only one"])}
    plain = refit_kinds(SCHEMA, loaded, default_accuracy=0.7, settings={}, now=0)
    pooled = types.SimpleNamespace(accuracy={"summary": 0.9}, rating_sd={})
    learned = refit_kinds(SCHEMA, loaded, default_accuracy=0.7, settings={}, now=0, pooled=pooled)
    assert plain[0].confidences[0] == pytest.approx(0.7)
    assert learned[0].confidences[0] == pytest.approx(0.9)
