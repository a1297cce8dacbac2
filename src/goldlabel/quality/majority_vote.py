"""Majority vote and annotator-weighted majority vote (Wawa)."""

from __future__ import annotations

import numpy as np

from .answers import Answers
from .categorical import CategoricalEstimator, clamp_gold, normalize_rows, vote_counts

__all__ = ["MajorityVote", "Wawa"]


def _agreement(data: Answers, labels: np.ndarray) -> np.ndarray:
    """Share of each annotator's answers that equal the item's label."""
    hits = np.bincount(data.annotator, weights=(data.label == labels[data.item]).astype(float),
                       minlength=data.n_annotators)
    totals = np.bincount(data.annotator, minlength=data.n_annotators)
    return np.divide(hits, totals, out=np.zeros(data.n_annotators), where=totals > 0)


class MajorityVote(CategoricalEstimator):
    """Majority vote: ``P(y_i = k) = n_ik / n_i``, the share of item i's answers saying k.

    Ties go to the lowest label. ``skills_`` is each annotator's agreement with the result.
    """

    def _fit(self, data, gold_items, gold_labels):
        probas = clamp_gold(normalize_rows(vote_counts(data)), gold_items, gold_labels)
        return probas, _agreement(data, probas.argmax(axis=1))


class Wawa(CategoricalEstimator):
    """Worker agreement with aggregate (Wawa): weight each annotator by their agreement with
    majority vote, then vote again, ``P(y_i = k) ∝ sum_j w_j [l_ij = k]``.

    Appen (Figure Eight) "trust"-weighted vote; as in crowd-kit's ``Wawa``.
    """

    def _fit(self, data, gold_items, gold_labels):
        first = clamp_gold(normalize_rows(vote_counts(data)), gold_items, gold_labels)
        weights = _agreement(data, first.argmax(axis=1))
        probas = clamp_gold(normalize_rows(vote_counts(data, weights)), gold_items, gold_labels)
        return probas, weights
