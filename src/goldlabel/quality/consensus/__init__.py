"""Consensus (value + confidence) for the question kinds other than ``choice``:
``multi_choice``, ``rating``, ``text``, ``ranking``, ``spans`` and ``boxes``.

Two paths, as for choice questions (:mod:`.choice`):

* per answer, inside the server's submit transaction: :func:`consensus_for` computes one
  question's consensus over ONE item's answers (O(answers on the item)) with the per-kind
  functions. Annotator skills are the
  learned one-coin accuracies where the re-fit stored them (multi_choice, ranking, spans),
  else the server's ``default_annotator_accuracy``.
* in the full re-fit: :func:`refit_question` runs the library estimators
  (:mod:`goldlabel.quality`) once per question over all the project's answers, vectorized
  across items (no Python loop per item or per answer in the math; parsing the JSON answers
  and building the output rows is the edge).

Confidence per kind (the stopping rule is the choice rule: an item is final when the
smallest confidence over its questions reaches ``target_confidence`` and ``overlap_min`` is
met; needs_review at ``overlap_max``). ``logit(p_j)`` is an annotator's one-coin weight.

* multi_choice: per label, P(label applies) = sigmoid(sum_j ±logit(p_j)) (+ for a tick,
  - for no tick; prior 1/2). Value: labels with P >= 0.5, trimmed to ``max_selections`` /
  filled to ``min_selections`` by P. Confidence: min over labels of P (selected) or 1 - P.
* rating: x_j ~ N(mu, sigma^2 / w_j), flat prior on mu, sigma^2 ~ scaled-Inv-chi^2(2, tol^2).
  mu | answers ~ Student-t(1 + n, xbar_w, s^2 / sum w). Value: xbar_w snapped to the scale's
  grid. Confidence: P(|mu - value| <= tol), tol = ``rating_tolerance`` or half a step (a
  twentieth of the range for a continuous scale).
* text: the medoid answer (library ``TextMedoid``); an answer agrees with it when the cosine
  similarity of their n-gram bags is >= ``text_similarity`` (or the strings are equal).
  Confidence: sigmoid(sum_agree logit(p_j) - sum_disagree logit(p_j)).
* ranking: pair (a, b) gets L_ab = sum_j ±logit(p_j) (+ when j ranked a above b; tied: 0).
  Value: candidates by weighted Borda score sum_b L_ab. Confidence: min over all pairs of the
  consensus order of sigmoid(L_ab), the probability of its weakest ordered pair.
* spans: the text is cut into elementary segments at every span boundary any annotator drew;
  each segment gets a one-coin posterior over {outside, label_1..label_K}. Value: maximal
  runs of segments whose most probable class is a label. Confidence: mean of
  max_c P(class c) over the characters any annotator marked (length-weighted).
* boxes: boxes clustered by IoU >= 0.5 (library ``BoxDawidSkene`` clustering); a cluster
  exists with P = sigmoid(sum_drew logit(p_j) - sum_not logit(p_j)). Value: the mean box of
  every cluster with P >= 0.5, with its majority label. Confidence: min over clusters of
  max(P, 1 - P).

Empty answers are information: an item where nobody marked a span or drew a box gets the
posterior of "nothing here" from one vote per answer (for boxes, and multi_choice labels
nobody ticked, 0.70, 0.845, 0.927, 0.967 at the default accuracy, as for a choice question;
spans have K + 1 classes, so the same answers give more).

The re-fit uses the learned accuracies (or reliabilities, recalls and false-box rates) but a
prior of 1/2 where an estimator learns a prevalence by maximum likelihood (multi_choice,
boxes): on a small project that prevalence collapses to 0 or 1 and outvotes the answers.
User documentation: docs/concepts.md, "Other question kinds".

The code of each kind (its per-answer function ``<kind>_consensus`` and its re-fit
``refit_<kind>``) is in a module of this package named for the kind; this module dispatches to
them. The server's orchestration (reading answers and skills, writing consensus rows) is
:mod:`goldlabel.services.consensus` and :mod:`goldlabel.services.refit`; this package imports
nothing of the server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from goldlabel.quality.consensus.boxes import boxes_consensus, refit_boxes
from goldlabel.quality.consensus.choice import (
    answer_log_likelihoods,
    class_prior,
    confusions_for,
    posterior_from_scores,
    skill_confusions,
)
from goldlabel.quality.consensus.multi_choice import multi_choice_consensus, refit_multi_choice
from goldlabel.quality.consensus.one_coin import broadcast_accuracy, logit_weight, skill_rows
from goldlabel.quality.consensus.question import Question, RatingScale
from goldlabel.quality.consensus.ranking import ranking_consensus, refit_ranking
from goldlabel.quality.consensus.rating import rating_consensus, rating_tolerance, refit_rating
from goldlabel.quality.consensus.spans import refit_spans, spans_consensus
from goldlabel.quality.consensus.text import DEFAULT_TEXT_SIMILARITY, refit_text, text_consensus
from goldlabel.quality.keypoints import keypoints_consensus, refit_keypoints
from goldlabel.quality.polygons import polygons_consensus, refit_polygons

__all__ = [
    "DEFAULT_TEXT_SIMILARITY", "KINDS", "LEARNED_SKILL_KINDS", "Question", "RatingScale", "RefitResult",
    "answer_log_likelihoods",
    "boxes_consensus", "broadcast_accuracy", "class_prior", "confusions_for", "consensus_for",
    "keypoints_consensus", "logit_weight", "multi_choice_consensus", "polygons_consensus",
    "posterior_from_scores", "ranking_consensus", "rating_consensus", "rating_tolerance", "refit_boxes",
    "refit_keypoints", "refit_multi_choice", "refit_polygons", "refit_question", "refit_ranking",
    "refit_rating", "refit_spans", "refit_text", "skill_confusions", "skill_rows", "spans_consensus",
    "text_consensus",
]

#: the kinds this package aggregates per kind (choice: :mod:`.choice` and the estimators)
KINDS = ("multi_choice", "rating", "text", "ranking", "spans", "boxes", "polygons", "keypoints")
#: kinds whose per-answer update reads learned one-coin accuracies stored by the re-fit
LEARNED_SKILL_KINDS = ("multi_choice", "ranking", "spans")


def consensus_for(question: Question, values: Sequence[Any], accuracy: Any,
                  settings: Mapping[str, Any] | None = None) -> tuple[Any, float]:
    """(value, confidence) of one question over one item's answer values (non-null)."""
    settings = settings or {}
    kind = question.kind
    if kind == "multi_choice":
        return multi_choice_consensus(question, values, accuracy)
    if kind == "rating":
        return rating_consensus(question, values, settings)  # type: ignore[arg-type]
    if kind == "text":
        return text_consensus(values, accuracy, settings.get("text_similarity") or DEFAULT_TEXT_SIMILARITY)
    if kind == "ranking":
        return ranking_consensus(question, values, accuracy)
    if kind == "spans":
        return spans_consensus(question, values, accuracy)
    if kind == "boxes":
        return boxes_consensus(question, values, accuracy)
    if kind == "polygons":
        return polygons_consensus(question, values, accuracy)
    if kind == "keypoints":
        return keypoints_consensus(question, values, accuracy)
    raise ValueError(f"no consensus for question kind {kind!r}")


@dataclass
class RefitResult:
    """One question's re-fit: per item id its value and confidence; optional skill rows."""

    question: str
    method: str
    item_ids: np.ndarray
    values: list[Any]
    confidences: np.ndarray
    skills: list[dict[str, Any]] | None = None
    n_answers: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


def _codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(ids, return_inverse=True)
    return uniq, inverse.astype(np.int64)


_REFIT: dict[str, Callable[..., tuple[Any, ...]]] = {
    "multi_choice": refit_multi_choice,
    "rating": refit_rating,
    "text": refit_text,
    "ranking": refit_ranking,
    "spans": refit_spans,
    "boxes": refit_boxes,
    "polygons": refit_polygons,
    "keypoints": refit_keypoints,
}


def refit_question(question: Question, item_ids: np.ndarray, annotator_ids: np.ndarray,
                   values: list[Any], *, default_accuracy: float = 0.7,
                   settings: Mapping[str, Any] | None = None, now: int = 0) -> RefitResult:
    """Re-fit one non-choice question over all its answers (long format: one entry per answer,
    any integer ids); ``now`` stamps the skill rows."""
    if question.kind not in _REFIT:
        raise ValueError(f"no re-fit for question kind {question.kind!r}")
    items, item = _codes(np.asarray(item_ids, np.int64))
    annotators, annotator = _codes(np.asarray(annotator_ids, np.int64))
    method, out_values, confidence, skills = _REFIT[question.kind](
        question, items, item, annotator, annotators, values, default_accuracy, settings or {}, now)
    return RefitResult(question.name, method, items, out_values, np.asarray(confidence, np.float64),
                       skills, len(values),
                       {"method": method, "answers": len(values), "items": len(items),
                        "annotators": len(annotators)})
